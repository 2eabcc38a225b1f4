//! credguard in Kubernetes: credential specs checked cluster-wide, by the one linter of
//! `credguard::credspec`, in the three ways clusters take checks.
//!
//! - [`policy`]: a ValidatingAdmissionPolicy (CEL) generated from the lint codes CEL can
//!   express.
//! - [`check`]: an offline check of manifests (GMSACredentialSpecs, workloads, RBAC).
//! - [`admission`]: the admission handler (AdmissionReview in, AdmissionReview out), and
//!   [`webhook`], the TLS server around it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod check;
pub mod policy;
pub mod webhook;
