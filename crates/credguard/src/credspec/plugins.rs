//! The CCG plug-ins credential specs are known to name, for naming them in output and for
//! catching a mistyped `PluginGUID`.

use serde::Serialize;

/// The placeholder GUID in Microsoft's portable-CCG documentation; not a GUID at all
/// (G, P and J are not hexadecimal digits), and copied into other projects' fixtures.
pub const DOCS_PLACEHOLDER_PLUGIN_GUID: &str = "{GDMA0342-266A-4D1P-831J-20990E82944F}";

/// The Azure Key Vault plug-in (AKS): its PluginInput is `ObjectId=...;SecretUri=...`.
pub const AZURE_KEY_VAULT_PLUGIN_GUID: &str = "{CCC2A336-D7F3-4818-A213-272B7924213E}";

/// The AWS plug-in (ECS and EKS domainless gMSA): its PluginInput is a JSON document with a
/// `credentialArn`.
pub const AWS_PLUGIN_GUID: &str = "{859E1386-BDB4-49E8-85C7-3070B13920E1}";

/// The DNS suffixes of Azure Key Vault a `SecretUri` may name: the public cloud, Azure China,
/// Azure US Government and the (retired) Azure Germany cloud.
pub const KEY_VAULT_HOSTS: &[&str] = &[
    "vault.azure.net",
    "vault.azure.cn",
    "vault.usgovcloudapi.net",
    "vault.microsoftazure.de",
];

/// A CCG plug-in whose CLSID is public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownPlugin {
    /// The CLSID, braced and upper case, as `PluginGUID` holds it.
    pub guid: &'static str,
    /// What it is.
    pub name: &'static str,
}

/// The known plug-ins.
pub const KNOWN_PLUGINS: &[KnownPlugin] = &[
    KnownPlugin {
        guid: AZURE_KEY_VAULT_PLUGIN_GUID,
        name: "Azure Key Vault plug-in",
    },
    KnownPlugin {
        guid: AWS_PLUGIN_GUID,
        name: "AWS ECS domainless gMSA plug-in",
    },
    KnownPlugin {
        guid: "{E4781092-F116-4B79-B55E-28EB6A224E26}",
        name: "Rancher gMSA plug-in",
    },
    KnownPlugin {
        guid: "{8019A64C-3F4E-4DE3-AD2B-9A544290E2C3}",
        name: "Cloud Foundry winc ccg-plugin",
    },
    KnownPlugin {
        guid: "{CFCA0441-511D-4B2A-862E-20348A78760B}",
        name: "sample plug-in of Microsoft's ccgplugins.h reference",
    },
];

impl KnownPlugin {
    /// The known plug-in with this `PluginGUID` (braced; compared ignoring case).
    #[must_use]
    pub fn by_guid(guid: &str) -> Option<KnownPlugin> {
        KNOWN_PLUGINS
            .iter()
            .find(|p| p.guid.eq_ignore_ascii_case(guid.trim()))
            .copied()
    }

    /// `the AWS ECS domainless gMSA plug-in {859E...}`.
    #[must_use]
    pub fn description(&self) -> String {
        format!("the {} {}", self.name, self.guid)
    }
}

/// The known plug-in whose GUID differs from `guid` (braced) in one or two characters, and by
/// how many.
#[must_use]
pub fn nearest_known_plugin(guid: &str) -> Option<(KnownPlugin, usize)> {
    let guid = guid.to_ascii_uppercase();
    KNOWN_PLUGINS
        .iter()
        .filter(|p| p.guid.len() == guid.len())
        .map(|p| {
            let differ = p
                .guid
                .bytes()
                .zip(guid.bytes())
                .filter(|(a, b)| a != b)
                .count();
            (*p, differ)
        })
        .filter(|(_, differ)| (1..=2).contains(differ))
        .min_by_key(|(_, differ)| *differ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credspec::syntax::is_guid;

    #[test]
    fn known_guids_are_guids_and_the_placeholder_is_not() {
        for p in KNOWN_PLUGINS {
            assert!(is_guid(&p.guid[1..p.guid.len() - 1]), "{}", p.guid);
        }
        let placeholder = DOCS_PLACEHOLDER_PLUGIN_GUID;
        assert!(!is_guid(&placeholder[1..placeholder.len() - 1]));
    }

    #[test]
    fn lookups() {
        assert_eq!(
            KnownPlugin::by_guid("{859e1386-bdb4-49e8-85c7-3070b13920e1}").map(|p| p.name),
            Some("AWS ECS domainless gMSA plug-in")
        );
        let (p, n) = nearest_known_plugin("{CCC2A336-D7F3-4818-A213-272B7924213F}").unwrap();
        assert_eq!((p.name, n), ("Azure Key Vault plug-in", 1));
        assert_eq!(
            nearest_known_plugin("{00000000-0000-0000-0000-000000000000}"),
            None
        );
    }
}
