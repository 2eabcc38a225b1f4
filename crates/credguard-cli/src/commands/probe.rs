//! `credguard probe`: the end-to-end check of CCG on this host.
//!
//! Adds an instance under a generated id, verifies it is listed with what a container
//! needs, removes it and verifies it is gone. Every step is printed with its duration; the
//! exit code is 0 only if every step passed, and the instance is never left behind (the
//! removal runs whatever the verification found).

use std::time::{Duration, Instant};

use crate::chain::chain_line;
use clap::Args;
use credguard::Isolation;

use crate::Context;
use crate::credspec_input::{CredspecArgs, read_credspec};
use crate::documents::{ProbeDoc, ProbeStep};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, emit};

pub const EXAMPLES: &str = "\
Examples:
  credguard probe --credspec examples/credspecs/contoso_webapp01.json
  credguard probe --credspec file://contoso_webapp01.json --isolation hyperv
  # also hot-add the HvSocket entry
  credguard probe --credspec spec.json --isolation hyperv --uvm uvm-1
  # steps and durations as JSON
  credguard --output json probe --credspec spec.json";

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub spec: CredspecArgs,

    /// The isolation to probe: `process` (LRPC) or `hyperv` (HvSocket).
    #[arg(long, value_enum, default_value = "process")]
    pub isolation: Isolation,

    /// Hyper-V isolation: a utility VM to hot-add the probe instance's HvSocket entry to
    /// (and remove it from again).
    #[arg(long, value_name = "ID")]
    pub uvm: Option<String>,
}

struct StepResult {
    name: &'static str,
    ok: bool,
    took: Duration,
    detail: String,
}

struct Probe {
    steps: Vec<StepResult>,
}

impl Probe {
    fn step<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<(T, String), String>,
    ) -> Option<T> {
        let start = Instant::now();
        let r = f();
        let took = start.elapsed();
        let (ok, detail, value) = match r {
            Ok((v, detail)) => (true, detail, Some(v)),
            Err(detail) => (false, detail, None),
        };
        self.steps.push(StepResult {
            name,
            ok,
            took,
            detail,
        });
        value
    }
}

pub fn run(ctx: &Context, args: &ProbeArgs) -> Result<Exit, CliError> {
    let isolation = args.isolation;
    // Said in the flags' terms before the spec is read (the library refuses it too).
    if args.uvm.is_some() && isolation != Isolation::HyperV {
        return Err(CliError::usage("--uvm applies to --isolation hyperv only"));
    }
    let id = format!("credguard-probe-{}", uuid::Uuid::new_v4());
    let spec = read_credspec(ctx, &args.spec, |spec| {
        credguard::SpecRequest::new(&id, spec, isolation)
            .with_utility_vm(args.uvm.as_deref())
            .check()
    })?;
    let client = ctx.client()?;
    let mut probe = Probe { steps: Vec::new() };

    let created = probe.step("add instance", || {
        let request =
            credguard::SpecRequest::new(&id, &spec, isolation).with_utility_vm(args.uvm.as_deref());
        client
            .create_spec_request(&request)
            .map(|(inst, handle)| {
                let transport = inst
                    .credential_guard
                    .as_ref()
                    .map_or_else(String::new, |c| c.transport.to_string());
                (handle, format!("transport {transport}"))
            })
            .map_err(|e| chain_line(&e))
    });

    if let Some(mut handle) = created {
        probe.step("verify listing", || {
            let inst = client
                .get(&id)
                .map_err(|e| chain_line(&e))?
                .ok_or("HCS does not list the instance")?;
            let cg = inst
                .credential_guard
                .as_ref()
                .ok_or("the instance has no CredentialGuard state")?;
            if cg.cookie.is_empty() {
                return Err("the instance has no Cookie".into());
            }
            if cg.rpc_endpoint.is_empty() {
                return Err("the instance has no RpcEndpoint".into());
            }
            // What HCS answered, shown as every name is.
            let mut detail = format!(
                "cookie {}..., endpoint {}",
                cookie_prefix(&cg.cookie),
                crate::output::text(&cg.rpc_endpoint)
            );
            if isolation == Isolation::HyperV {
                let hv = inst
                    .hv_socket_config
                    .as_ref()
                    .ok_or("the instance has no HvSocketConfig")?;
                if hv.service_id.is_empty() || hv.service_config.is_none() {
                    return Err(
                        "the instance's HvSocketConfig lacks ServiceId or ServiceConfig".into(),
                    );
                }
                detail.push_str(&format!(
                    ", hvsocket service {}",
                    crate::output::text(&hv.service_id)
                ));
            }
            Ok(((), detail))
        });
        // Runs whatever the verification found: the probe never leaves its instance behind.
        let removed = probe.step("remove instance", || {
            handle
                .release()
                .map(|()| ((), String::new()))
                .map_err(|e| chain_line(&e))
        });
        if removed.is_some() {
            probe.step("verify removal", || match client.get(&id) {
                Ok(None) => Ok(((), String::new())),
                Ok(Some(_)) => Err("HCS still lists the instance".into()),
                Err(e) => Err(chain_line(&e)),
            });
        } else {
            // The handle stays unreleased; say so loudly, with the id to clean up.
            handle.detach();
        }
    }

    let passed = probe.steps.iter().all(|s| s.ok);
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &ProbeDoc {
                container_id: id.clone(),
                isolation,
                backend: ctx.backend.resolve().name().to_owned(),
                passed,
                steps: probe
                    .steps
                    .iter()
                    .map(|s| ProbeStep {
                        step: s.name.to_owned(),
                        ok: s.ok,
                        duration_ms: s.took.as_secs_f64() * 1000.0,
                        detail: s.detail.clone(),
                    })
                    .collect(),
            },
        ),
        OutputFormat::Text => {
            outln!(
                "probe: container id {id}, {} isolation, backend {}",
                isolation,
                ctx.backend.resolve().name()
            );
            for s in &probe.steps {
                outln!(
                    "  [{}] {:<16} {:>9.3} ms  {}",
                    if s.ok { " ok " } else { "FAIL" },
                    s.name,
                    s.took.as_secs_f64() * 1000.0,
                    s.detail
                );
            }
            outln!("probe {}", if passed { "passed" } else { "FAILED" });
        }
    }
    if !passed
        && probe
            .steps
            .iter()
            .any(|s| s.name == "remove instance" && !s.ok)
    {
        errln!(
            "warning: the probe instance `{id}` may be left behind: remove it with `credguard instances remove {id}`"
        );
    }
    Ok(if passed { Exit::Ok } else { Exit::CheckFailed })
}

/// The first 8 characters of a cookie, shown as every name is: characters, not bytes (a
/// cookie is HCS's text, whatever it holds; slicing bytes could split a character).
fn cookie_prefix(cookie: &str) -> String {
    let head: String = cookie.chars().take(8).collect();
    crate::output::text(&head)
}

#[cfg(test)]
mod tests {
    use super::cookie_prefix;

    #[test]
    fn a_cookie_prefix_never_splits_a_character_or_shows_a_control() {
        assert_eq!(cookie_prefix("0100000011223344"), "01000000");
        assert_eq!(cookie_prefix("aaaaaaa\u{e9}\u{20ac}"), "aaaaaaa\u{e9}");
        assert_eq!(cookie_prefix("ab"), "ab");
        assert_eq!(cookie_prefix("\u{1b}[31m"), "\\u{1b}[31m");
    }
}
