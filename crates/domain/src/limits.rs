//! Project limits (Atlas' `atlas.project.*` limits): each has a default and a maximum; a
//! project may set its own value from 1 to the maximum. Tessera enforces the ones it keeps:
//! clusters, database users and IP access-list entries (counted in the change's unit of work,
//! under the project's row lock).

/// One limit: its name, default and maximum (Atlas' published values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectLimit {
    pub name: &'static str,
    pub default: i64,
    pub max: i64,
}

pub const CLUSTERS: &str = "atlas.project.deployment.clusters";
pub const DATABASE_USERS: &str = "atlas.project.security.databaseAccess.users";
pub const NETWORK_ENTRIES: &str = "atlas.project.security.networkAccess.entries";
pub const CUSTOM_ROLES: &str = "atlas.project.security.databaseAccess.customRoles";

/// Every limit Tessera knows.
pub const PROJECT_LIMITS: &[ProjectLimit] = &[
    ProjectLimit {
        name: CLUSTERS,
        default: 25,
        max: 90,
    },
    ProjectLimit {
        name: "atlas.project.deployment.nodesPerPrivateLinkRegion",
        default: 50,
        max: 90,
    },
    ProjectLimit {
        name: CUSTOM_ROLES,
        default: 100,
        max: 1400,
    },
    ProjectLimit {
        name: DATABASE_USERS,
        default: 100,
        max: 900,
    },
    ProjectLimit {
        name: "atlas.project.security.networkAccess.crossRegionEntries",
        default: 40,
        max: 220,
    },
    ProjectLimit {
        name: NETWORK_ENTRIES,
        default: 200,
        max: 20000,
    },
];

/// The limit of this name.
pub fn spec(name: &str) -> Option<ProjectLimit> {
    PROJECT_LIMITS.iter().find(|l| l.name == name).copied()
}

/// Whether `used` (after a change) stays within `limit`.
pub fn within(used: i64, limit: i64) -> bool {
    used <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_limits_are_known() {
        for n in [CLUSTERS, DATABASE_USERS, NETWORK_ENTRIES, CUSTOM_ROLES] {
            let l = spec(n).unwrap_or(ProjectLimit {
                name: "",
                default: 0,
                max: 0,
            });
            assert!(l.default >= 1 && l.default <= l.max, "{n}");
        }
        assert!(within(25, 25) && !within(26, 25));
        assert!(spec("nope").is_none());
    }
}
