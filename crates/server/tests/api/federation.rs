//! Federated authentication, OIDC workforce identity providers: the org's federation
//! settings made on first need; IdP create, list, get, update, delete; the connected org
//! config linking the IdP; role mappings with org and project roles; bad input refused with
//! nothing changed; a non-owner refused; another org's key 404; events.

use reqwest::Method;
use serde_json::{json, Value};

use crate::clusters::second_org;
use crate::harness::{Key, Resp, TestServer};

const V1115: &str = "application/vnd.atlas.2023-11-15+json";

async fn idp_call(s: &TestServer, k: &Key, m: Method, path: &str, body: Option<Value>) -> Resp {
    s.call_with(k, m, path, body, &[("accept", V1115)], Default::default())
        .await
}

fn oidc(name: &str) -> Value {
    json!({
        "protocol": "OIDC",
        "idpType": "WORKFORCE",
        "displayName": name,
        "issuerUri": "http://127.0.0.1:9/realms/test",
        "clientId": "tessera-console",
        "audience": "tessera",
        "authorizationType": "GROUP",
        "groupsClaim": "groups",
        "userClaim": "sub",
        "requestedScopes": ["openid", "profile"],
        "associatedDomains": ["example.com"],
        "description": "test IdP",
    })
}

async fn org_event_types(s: &TestServer) -> Vec<String> {
    let r = s
        .call(
            &s.owner(),
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}/events?itemsPerPage=500", s.org()),
            None,
        )
        .await;
    r.expect(200);
    r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventTypeName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn federation_oidc_providers_configs_and_role_mappings() {
    let s = TestServer::start().await;
    let o = s.owner();
    let org = s.org().to_owned();
    let p = s.project().to_owned();
    let settings_path = format!("/api/atlas/v2/orgs/{org}/federationSettings");

    // A non-owner is refused before anything is made.
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    s.call(&member, Method::GET, &settings_path, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);

    // Made on first need, the same afterwards.
    let r = s.call(&o, Method::GET, &settings_path, None).await;
    r.expect(200);
    let fid = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(fid.len(), 24);
    assert_eq!(r.json["identityProviderStatus"], "INACTIVE");
    assert_eq!(r.json["hasRoleMappings"], false);
    let again = s.call(&o, Method::GET, &settings_path, None).await;
    assert_eq!(again.json["id"], fid.as_str());
    let fed = format!("/api/atlas/v2/federationSettings/{fid}");

    // Create, list (OIDC only when asked), get, update.
    let r = idp_call(
        &s,
        &o,
        Method::POST,
        &format!("{fed}/identityProviders"),
        Some(oidc("Okta")),
    )
    .await;
    r.expect(200);
    let idp = r.json["id"].as_str().unwrap().to_owned();
    let legacy = r.json["oktaIdpId"].as_str().unwrap().to_owned();
    assert_eq!(legacy.len(), 20);
    assert_eq!(r.json["protocol"], "OIDC");
    assert_eq!(r.json["clientId"], "tessera-console");
    assert_eq!(r.json["associatedOrgs"], json!([]));
    let list = s
        .call(&o, Method::GET, &format!("{fed}/identityProviders"), None)
        .await;
    list.expect(200);
    assert_eq!(list.json["totalCount"], 0, "SAML by default (Atlas)");
    let list = s
        .call(
            &o,
            Method::GET,
            &format!("{fed}/identityProviders?protocol=OIDC&idpType=WORKFORCE"),
            None,
        )
        .await;
    list.expect(200);
    assert_eq!(list.json["totalCount"], 1);
    assert_eq!(list.json["results"][0]["id"], idp.as_str());
    s.call(
        &o,
        Method::GET,
        &format!("{fed}/identityProviders?protocol=LDAP"),
        None,
    )
    .await
    .expect_error(400, "INVALID_QUERY_PARAMETER");
    let idp_path = format!("{fed}/identityProviders/{idp}");
    let r = idp_call(
        &s,
        &o,
        Method::PATCH,
        &idp_path,
        Some(json!({"displayName": "Okta prod"})),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["displayName"], "Okta prod");
    assert_eq!(r.json["issuerUri"], "http://127.0.0.1:9/realms/test");
    let r = idp_call(&s, &o, Method::GET, &idp_path, None).await;
    r.expect(200);
    assert_eq!(r.json["displayName"], "Okta prod");

    // Bad IdPs: the documented 400, nothing written.
    let before = s.snapshot().await;
    let mut no_client = oidc("x");
    no_client.as_object_mut().unwrap().remove("clientId");
    let mut no_name = oidc("x");
    no_name.as_object_mut().unwrap().remove("displayName");
    let mut saml = oidc("x");
    saml["protocol"] = json!("SAML");
    let mut bad_type = oidc("x");
    bad_type["authorizationType"] = json!("TEAM");
    for (body, code) in [
        (no_client, "MISSING_ATTRIBUTE"),
        (no_name, "MISSING_ATTRIBUTE"),
        (
            json!({"protocol": "OIDC", "displayName": "x", "issuerUri": "http://idp.example.com", "clientId": "c"}),
            "INVALID_ATTRIBUTE",
        ),
        (
            json!({"protocol": "OIDC", "displayName": "x", "issuerUri": "not a url", "clientId": "c"}),
            "INVALID_ATTRIBUTE",
        ),
        (
            json!({"protocol": "OIDC", "displayName": "x", "issuerUri": "https://idp.example.com", "clientId": ""}),
            "INVALID_ATTRIBUTE",
        ),
        (saml, "INVALID_ATTRIBUTE"),
        (bad_type, "INVALID_ENUM_VALUE"),
        (
            json!({"protocol": "OIDC", "displayName": "x", "issuerUri": "https://i.example", "clientId": "c", "colour": 1}),
            "INVALID_ATTRIBUTE",
        ),
    ] {
        idp_call(
            &s,
            &o,
            Method::POST,
            &format!("{fed}/identityProviders"),
            Some(body),
        )
        .await
        .expect_error(400, code);
    }
    idp_call(
        &s,
        &o,
        Method::PATCH,
        &idp_path,
        Some(json!({"issuerUri": "ftp://x"})),
    )
    .await
    .expect_error(400, "INVALID_ATTRIBUTE");
    assert_eq!(before, s.snapshot().await);

    // Link the IdP (by its legacy id, as Atlas names it) and grant org members.
    let cfg_path = format!("{fed}/connectedOrgConfigs/{org}");
    let r = s.call(&o, Method::GET, &cfg_path, None).await;
    r.expect(200);
    assert!(r.json.get("identityProviderId").is_none());
    let r = s
        .call(
            &o,
            Method::PATCH,
            &cfg_path,
            Some(
                json!({"identityProviderId": legacy, "domainAllowList": ["example.com"],
                        "domainRestrictionEnabled": true, "postAuthRoleGrants": ["ORG_MEMBER"]}),
            ),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["identityProviderId"], legacy.as_str());
    assert_eq!(r.json["postAuthRoleGrants"], json!(["ORG_MEMBER"]));
    let list = s
        .call(&o, Method::GET, &format!("{fed}/connectedOrgConfigs"), None)
        .await;
    assert_eq!(list.json["totalCount"], 1);
    assert_eq!(list.json["results"][0]["orgId"], org.as_str());
    let r = s.call(&o, Method::GET, &settings_path, None).await;
    assert_eq!(r.json["identityProviderStatus"], "ACTIVE");
    assert_eq!(r.json["identityProviderId"], legacy.as_str());
    assert_eq!(r.json["federatedDomains"], json!(["example.com"]));
    let r = idp_call(&s, &o, Method::GET, &idp_path, None).await;
    assert_eq!(r.json["associatedOrgs"][0]["orgId"], org.as_str());
    // In use: not deleted.
    idp_call(&s, &o, Method::DELETE, &idp_path, None)
        .await
        .expect_error(400, "IDENTITY_PROVIDER_IN_USE");
    s.call(
        &o,
        Method::PATCH,
        &cfg_path,
        Some(json!({"postAuthRoleGrants": ["ORG_SUPERUSER"], "identityProviderId": legacy})),
    )
    .await
    .expect_error(400, "INVALID_ENUM_VALUE");
    s.call(
        &o,
        Method::PATCH,
        &cfg_path,
        Some(json!({"identityProviderId": "0123456789abcdef0123"})),
    )
    .await
    .expect_error(400, "INVALID_ATTRIBUTE");
    s.call(&o, Method::DELETE, &cfg_path, None)
        .await
        .expect_error(400, "LAST_CONNECTED_ORG");

    // Role mappings: an org role and a project role.
    let maps = format!("{cfg_path}/roleMappings");
    let mapping = json!({"externalGroupName": "dbas", "roleAssignments": [
        {"orgId": org, "role": "ORG_READ_ONLY"}, {"groupId": p, "role": "GROUP_OWNER"}]});
    let r = s.call(&o, Method::POST, &maps, Some(mapping.clone())).await;
    r.expect(200);
    let mid = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json["roleAssignments"][1]["groupId"], p.as_str());
    let (other, p2) = second_org(&s).await;
    let before = s.snapshot().await;
    for (body, status, code) in [
        (mapping.clone(), 400, "DUPLICATE_EXTERNAL_GROUP_NAME"),
        (
            json!({"externalGroupName": "x", "roleAssignments": [{"orgId": org, "role": "ORG_WIZARD"}]}),
            400,
            "INVALID_ENUM_VALUE",
        ),
        (
            json!({"externalGroupName": "x", "roleAssignments": [{"orgId": org, "role": "GROUP_OWNER"}]}),
            400,
            "INVALID_ENUM_VALUE",
        ),
        (
            json!({"externalGroupName": "x", "roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}, {"groupId": p2, "role": "GROUP_READ_ONLY"}]}),
            400,
            "INVALID_ATTRIBUTE",
        ),
        (
            json!({"externalGroupName": "x", "roleAssignments": [{"groupId": p, "role": "GROUP_READ_ONLY"}]}),
            400,
            "INVALID_ATTRIBUTE",
        ),
        (
            json!({"externalGroupName": "x", "roleAssignments": [{"orgId": org, "groupId": p, "role": "ORG_MEMBER"}]}),
            400,
            "INVALID_ATTRIBUTE",
        ),
        (
            json!({"roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}]}),
            400,
            "MISSING_ATTRIBUTE",
        ),
    ] {
        s.call(&o, Method::POST, &maps, Some(body))
            .await
            .expect_error(status, code);
    }
    assert_eq!(before, s.snapshot().await);
    let r = s
        .call(
            &o,
            Method::POST,
            &maps,
            Some(json!({"externalGroupName": "devs",
        "roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}]})),
        )
        .await;
    r.expect(200);
    let devs = r.json["id"].as_str().unwrap().to_owned();
    let list = s.call(&o, Method::GET, &maps, None).await;
    assert_eq!(list.json["totalCount"], 2);
    let one = format!("{maps}/{mid}");
    let r = s.call(&o, Method::GET, &one, None).await;
    assert_eq!(r.json["externalGroupName"], "dbas");
    let r = s
        .call(
            &o,
            Method::PUT,
            &one,
            Some(json!({"externalGroupName": "dbas", "roleAssignments": [
            {"orgId": org, "role": "ORG_MEMBER"}, {"groupId": p, "role": "GROUP_READ_ONLY"}]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["roleAssignments"][1]["role"], "GROUP_READ_ONLY");
    s.call(&o, Method::PUT, &one, Some(json!({"externalGroupName": "devs", "roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}]})))
        .await
        .expect_error(400, "DUPLICATE_EXTERNAL_GROUP_NAME");
    let r = s.call(&o, Method::GET, &settings_path, None).await;
    assert_eq!(r.json["hasRoleMappings"], true);

    // A member may not write (or read: Organization Owner), another org's owner sees nothing.
    let before = s.snapshot().await;
    s.call(&member, Method::POST, &maps, Some(json!({"externalGroupName": "m", "roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}]})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    idp_call(
        &s,
        &member,
        Method::PATCH,
        &idp_path,
        Some(json!({"displayName": "mine"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&member, Method::PATCH, &cfg_path, Some(json!({})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&member, Method::DELETE, &one, None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);
    let before_other = s.snapshot().await;
    for (m, path) in [
        (
            Method::GET,
            format!("{fed}/identityProviders?protocol=OIDC"),
        ),
        (Method::GET, cfg_path.clone()),
        (Method::DELETE, one.clone()),
        (Method::GET, format!("{fed}/connectedOrgConfigs")),
    ] {
        s.call(&other, m, &path, None)
            .await
            .expect_error(404, "FEDERATION_SETTINGS_NOT_FOUND");
    }
    idp_call(&s, &other, Method::DELETE, &idp_path, None)
        .await
        .expect_error(404, "FEDERATION_SETTINGS_NOT_FOUND");
    s.call(&other, Method::GET, &settings_path, None)
        .await
        .expect_error(404, "ORG_NOT_FOUND");
    assert_eq!(before_other, s.snapshot().await);

    // Delete: the mappings, then the IdP once disconnected.
    s.call(&o, Method::DELETE, &one, None).await.expect(204);
    s.call(&o, Method::DELETE, &one, None)
        .await
        .expect_error(404, "ROLE_MAPPING_NOT_FOUND");
    s.call(&o, Method::DELETE, &format!("{maps}/{devs}"), None)
        .await
        .expect(204);
    let r = s.call(&o, Method::PATCH, &cfg_path, Some(json!({}))).await;
    r.expect(200);
    assert!(r.json.get("identityProviderId").is_none());
    assert_eq!(r.json["domainRestrictionEnabled"], false);
    s.call(&o, Method::POST, &maps, Some(json!({"externalGroupName": "late", "roleAssignments": [{"orgId": org, "role": "ORG_MEMBER"}]})))
        .await
        .expect_error(400, "IDENTITY_PROVIDER_NOT_CONNECTED");
    idp_call(&s, &o, Method::DELETE, &idp_path, None)
        .await
        .expect(204);
    idp_call(&s, &o, Method::GET, &idp_path, None)
        .await
        .expect_error(404, "IDENTITY_PROVIDER_NOT_FOUND");

    let types = org_event_types(&s).await;
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("FEDERATION_SETTINGS_CREATED"), 1, "{types:?}");
    assert_eq!(count("IDENTITY_PROVIDER_CREATED"), 1, "{types:?}");
    assert_eq!(count("IDENTITY_PROVIDER_UPDATED"), 1, "{types:?}");
    assert_eq!(count("IDENTITY_PROVIDER_DELETED"), 1, "{types:?}");
    assert_eq!(count("CONNECTED_ORG_CONFIG_UPDATED"), 2, "{types:?}");
    assert_eq!(count("ROLE_MAPPING_CREATED"), 2, "{types:?}");
    assert_eq!(count("ROLE_MAPPING_UPDATED"), 1, "{types:?}");
    assert_eq!(count("ROLE_MAPPING_DELETED"), 2, "{types:?}");
    s.stop().await;
}
