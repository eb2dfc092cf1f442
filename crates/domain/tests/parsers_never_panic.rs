//! Property tests: every parser of untrusted text in the domain returns a value or an error,
//! never panics, and what it accepts round-trips.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tessera_domain::access::AccessEntry;
use tessera_domain::names::{EntityName, ServiceAccountDescription, ServiceAccountName};
use tessera_domain::{ClientId, ObjectId};

proptest! {
    #[test]
    fn object_ids(s in "\\PC{0,40}") {
        if let Some(id) = ObjectId::parse(&s) {
            prop_assert_eq!(id.to_hex(), s);
        }
    }

    #[test]
    fn object_ids_from_hex(bytes in proptest::array::uniform12(any::<u8>())) {
        let s = hex::encode(bytes);
        prop_assert_eq!(ObjectId::parse(&s).unwrap().to_hex(), s);
    }

    #[test]
    fn client_ids(s in "(mdb_sa_id_)?[0-9a-fA-F]{0,30}|\\PC{0,40}") {
        // Upper-case hex names the same id (the subset's pattern allows it); the id is
        // always shown in lower case, and only the hex may change case.
        if let Ok(id) = ClientId::parse(&s) {
            prop_assert_eq!(id.to_string(), s.to_ascii_lowercase());
            prop_assert!(s.starts_with(ClientId::PREFIX));
        }
    }

    #[test]
    fn access_entries(s in "[0-9a-f:./%]{0,50}|\\PC{0,50}") {
        if let Ok(e) = AccessEntry::parse_any(&s) {
            // The canonical key parses back to the same network.
            prop_assert_eq!(AccessEntry::from_cidr_block(&e.key()).unwrap().net, e.net);
        }
    }

    #[test]
    fn names(s in "\\PC{0,300}") {
        let _ = EntityName::parse("name", &s);
        let _ = ServiceAccountName::parse(&s);
        let _ = ServiceAccountDescription::parse(&s);
    }
}
