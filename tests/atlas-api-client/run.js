// Drives npm `mongodb-atlas-api-client` (pinned in package.json) against Tessera at the
// client's own base path, /api/atlas/v1.0, with HTTP Digest: its people (MongoDB Cloud users,
// org users, invitations, project teams and users), IP access list and whitelist, database
// user and custom role calls. Prints one line per check; exits non-zero on the first failure.
// Environment: TESSERA_URL, PUBLIC_KEY, PRIVATE_KEY, ORG_ID, PROJECT_ID, TEAM_ID.
"use strict";
const getClient = require("mongodb-atlas-api-client");

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const orgId = env("ORG_ID");
const projectId = env("PROJECT_ID");
const teamId = env("TEAM_ID");
const client = getClient({
  publicKey: env("PUBLIC_KEY"),
  privateKey: env("PRIVATE_KEY"),
  baseUrl: `${env("TESSERA_URL")}/api/atlas/v1.0`,
  projectId,
});

let passed = 0;
function check(name, ok, detail) {
  if (!ok) {
    console.log(`FAIL ${name}: ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok ${name}`);
}
const noError = (r) => r && !r.error && !r.errorCode;

async function main() {
  // MongoDB Cloud users.
  const created = await client.atlasUser.create({
    username: "ada@example.com", password: "a long enough password",
    emailAddress: "ada@example.com", firstName: "Ada", lastName: "Lovelace", country: "GB",
    mobileNumber: "+44 20 7946 0958",
    roles: [{ orgId, roleName: "ORG_MEMBER" }, { groupId: projectId, roleName: "GROUP_READ_ONLY" }],
  });
  check("atlasUser.create", noError(created) && created.id && !("password" in created), created);
  const userId = created.id;
  const byId = await client.atlasUser.getById(userId);
  check("atlasUser.getById", byId.username === "ada@example.com", byId);
  const byName = await client.atlasUser.getByName("ada@example.com");
  check("atlasUser.getByName", byName.id === userId, byName);
  const updated0 = await client.atlasUser.update(userId, { firstName: "Augusta" });
  check("atlasUser.update", noError(updated0) && updated0.firstName === "Augusta", updated0);
  const projectUsers = await client.atlasUser.getAll();
  check("atlasUser.getAll (project users)",
    noError(projectUsers) && projectUsers.results.some((u) => u.id === userId), projectUsers);
  const orgUsers = await client.organization.getAllUsersForOrganization(orgId);
  check("organization.getAllUsersForOrganization",
    noError(orgUsers) && orgUsers.results.some((u) => u.emailAddress === "ada@example.com"), orgUsers);
  const invite = await client.organization.invite(orgId, { username: "grace@example.com", roles: ["ORG_MEMBER"] });
  check("organization.invite", noError(invite) && invite.username === "grace@example.com" && invite.orgId === orgId, invite);

  // Teams of the project.
  const assigned = await client.project.assignTeams(projectId, [{ teamId, roleNames: ["GROUP_READ_ONLY"] }]);
  check("project.assignTeams", noError(assigned) && assigned.results.some((t) => t.teamId === teamId), assigned);
  const teams = await client.project.getTeamsByProjectId(projectId);
  check("project.getTeamsByProjectId", noError(teams) && teams.totalCount === 1, teams);
  await client.project.removeUserFromProject(projectId, userId);
  const after = await client.atlasUser.getAll();
  check("project.removeUserFromProject", !after.results.some((u) => u.id === userId), after);

  // The IP access list, and its older name.
  for (const [name, api] of [["projectAccesslist", client.projectAccesslist], ["projectWhitelist", client.projectWhitelist]]) {
    const ip = name === "projectAccesslist" ? "192.0.2.10" : "192.0.2.11";
    const made = await api.create([{ ipAddress: ip, comment: "office" }]);
    check(`${name}.create`, noError(made) && made.results.some((e) => e.ipAddress === ip), made);
    const all = await api.getAll();
    check(`${name}.getAll`, noError(all) && all.results.some((e) => e.ipAddress === ip), all);
    const one = await api.get(ip);
    check(`${name}.get`, one.ipAddress === ip && one.comment === "office", one);
    const upd = await api.update([{ ipAddress: ip, comment: "home" }]);
    check(`${name}.update`, noError(upd) && upd.results.some((e) => e.comment === "home"), upd);
    await api.delete(ip);
    const gone = await api.get(ip);
    check(`${name}.delete`, gone.error === 404, gone);
  }

  // Custom roles and database users.
  const role = await client.customDbRole.create({
    roleName: "salesReader",
    actions: [{ action: "FIND", resources: [{ db: "sales", collection: "" }] }],
    inheritedRoles: [],
  });
  check("customDbRole.create", noError(role) && role.roleName === "salesReader", role);
  check("customDbRole.get", (await client.customDbRole.get("salesReader")).roleName === "salesReader");
  const roles = await client.customDbRole.getAll();
  check("customDbRole.getAll", Array.isArray(roles) && roles.length === 1, roles);
  const dbUser = await client.user.create({
    databaseName: "admin", username: "app", password: "correct horse battery",
    roles: [{ roleName: "salesReader", databaseName: "admin" }],
  });
  check("user.create", noError(dbUser) && dbUser.username === "app" && !("password" in dbUser), dbUser);
  check("user.get", (await client.user.get("app")).username === "app");
  const dbUsers = await client.user.getAll();
  check("user.getAll", noError(dbUsers) && dbUsers.totalCount === 1, dbUsers);
  const updated = await client.user.update("app", { roles: [{ roleName: "read", databaseName: "sales" }] });
  check("user.update", noError(updated) && updated.roles[0].roleName === "read", updated);
  const roleUpdated = await client.customDbRole.update("salesReader", { inheritedRoles: [{ db: "admin", role: "read" }] });
  check("customDbRole.update", noError(roleUpdated) && roleUpdated.inheritedRoles.length === 1, roleUpdated);
  await client.user.delete("app");
  check("user.delete", (await client.user.get("app")).error === 404);
  await client.customDbRole.delete("salesReader");
  check("customDbRole.delete", (await client.customDbRole.get("salesReader")).error === 404);
  console.log(`passed ${passed}`);
}

main().catch((e) => {
  console.log(`FAIL exception: ${e && e.stack}`);
  process.exit(1);
});
