//! credguard in Kubernetes: credential specs checked cluster-wide, by the one linter of
//! `credguard::credspec`, in the three ways clusters take checks.
//!
//! - [`crd`]: the `GMSACredentialSpec` resource and what the API server does to one before
//!   admission (pruning to the CRD schema), shared by the three.
//! - [`policy`]: a ValidatingAdmissionPolicy (CEL) generated from the lint codes CEL can
//!   express.
//! - [`check`]: an offline check of manifests (GMSACredentialSpecs, workloads, RBAC).
//! - [`admission`]: the admission handler (AdmissionReview in, AdmissionReview out), and
//!   [`webhook`], the TLS server around it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod check;
pub mod crd;
pub mod policy;
pub mod webhook;
