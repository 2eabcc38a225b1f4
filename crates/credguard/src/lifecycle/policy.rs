//! Policy: what the caller or the credential spec's source (an OCI bundle's annotation)
//! says about gMSA for a container, checked before anything is sent.

use crate::credspec::SpecPolicy;
use crate::lifecycle::CcgError;
use crate::text::ShownId;

impl SpecPolicy {
    /// Refuses what this policy denies, for `container_id`: [`CcgError::Denied`].
    ///
    /// # Errors
    /// [`CcgError::Denied`] when the policy disables gMSA.
    pub fn check(&self, container_id: &str) -> Result<(), CcgError> {
        match &self.gmsa_disabled {
            Some(reason) => Err(CcgError::Denied {
                container_id: ShownId::new(container_id),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::credspec::{GMSA_DISABLE_ANNOTATION, SpecPolicy};

    #[test]
    fn the_disable_annotation_reads_like_go_parse_bool() {
        let with = |v: &str| {
            let doc = serde_json::json!({"annotations": {GMSA_DISABLE_ANNOTATION: v}});
            SpecPolicy::of_oci_config(doc.as_object().unwrap())
        };
        for yes in ["true", "1", "t", "TRUE", "True"] {
            assert!(with(yes).gmsa_disabled.is_some(), "{yes}");
            assert!(with(yes).check("c").is_err(), "{yes}");
        }
        for no in ["false", "0", "no", ""] {
            assert!(with(no).gmsa_disabled.is_none(), "{no}");
            assert!(with(no).check("c").is_ok(), "{no}");
        }
        let none = SpecPolicy::of_oci_config(serde_json::json!({}).as_object().unwrap());
        assert!(none.gmsa_disabled.is_none());
    }
}
