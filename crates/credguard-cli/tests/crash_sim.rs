//! Crash/restart simulation: random sequences of `instances add`, `instances remove` and
//! `reconcile`, each run as a child process that is killed (SIGKILL) at a random HCS call,
//! then a final `reconcile --alive-file` with the containers that should be running.
//! Afterwards HCS must list exactly those (zero leaks), each with its journal record (zero
//! lost records), and nothing else may dangle.
//!
//! Deterministic by default: the sequences come from a fixed seed ([`DEFAULT_SEED`]).
//! `CREDGUARD_SIM_SEED=<seed>` runs others, `CREDGUARD_SIM_SEED=random` a time-based seed;
//! the seed is printed at the start (`-- --nocapture` shows it) and in every failure, and
//! reproduces the run:
//! `CREDGUARD_SIM_SEED=<seed> CREDGUARD_SIM_SEQUENCES=<n> cargo test -p credguard-cli --test crash_sim -- --nocapture`.
//! The default run is 200 sequences; `docs/RELIABILITY.md` says how to run 10,000.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::Env;
use credguard::journal::{Journal, RecordState};
use credguard_emulator::{Api, Emulator, Fault, FaultAction};
const UVM: &str = "sim-uvm";

/// splitmix64: a small, well-known generator, enough to make sequences reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Sim {
    env: Env,
    spec: PathBuf,
    emu: Emulator,
    seed: u64,
    log: Vec<String>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let env = Env::new();
        let spec = env.spec();
        let emu = env.emulator();
        emu.create_uvm(UVM).unwrap();
        Sim {
            env,
            spec,
            emu,
            seed,
            log: Vec::new(),
        }
    }

    fn state(&self) -> PathBuf {
        self.env.state()
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "crash simulation failed (seed {}): {msg}\nsteps:\n  {}\nreproduce: CREDGUARD_SIM_SEED={} CREDGUARD_SIM_SEQUENCES=1 cargo test -p credguard-cli --test crash_sim",
            self.seed,
            self.log.join("\n  "),
            self.seed
        );
    }

    /// Runs a command, killing it inside the call `kill_at` targets if it gets there.
    /// Returns `Some(exit code)` if it ended by itself, `None` if it was killed.
    fn run(&mut self, args: Vec<String>, kill_at: Option<Fault>) -> Option<i32> {
        if let Some(f) = &kill_at {
            self.emu.inject(f.clone().delay_ms(60_000)).unwrap();
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self.env.spawn(&argv);
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child.until("kill point or end", || {
                kill_at.is_some() && self.emu.faults().unwrap().is_empty()
            })
        }));
        let outcome = match waited {
            Err(_) => self.fail(&format!("{args:?} hung (its stderr is above)")),
            Ok(Err(status)) => Some(status.code().unwrap_or(-1)),
            Ok(Ok(())) => {
                child.kill();
                None
            }
        };
        if outcome.is_some_and(|c| c != 0) {
            self.log
                .push(format!("  stderr: {}", child.stderr().trim_end()));
        }
        self.emu.clear_faults().unwrap();
        self.log.push(format!(
            "{} -> {}",
            args.join(" "),
            outcome.map_or_else(
                || format!(
                    "killed in {:?}",
                    kill_at.map(|f| (f.api, f.operation, f.skip))
                ),
                |c| format!("exit {c}")
            )
        ));
        outcome
    }

    fn listed(&self) -> BTreeSet<String> {
        self.emu
            .instances()
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect()
    }

    fn records(&self) -> Vec<(String, RecordState)> {
        Journal::open(&self.state().join("journal/emulator"))
            .unwrap()
            .records()
            .unwrap()
            .into_iter()
            .map(|r| (r.container_id().to_owned(), r.state()))
            .collect()
    }

    fn check_alive_kept(&self, alive: &BTreeSet<String>) {
        let listed = self.listed();
        let records = self.records();
        for id in alive {
            if !listed.contains(id) {
                self.fail(&format!(
                    "`{id}` was created and never removed, but HCS lost it"
                ));
            }
            if !records
                .iter()
                .any(|(r, s)| r == id && *s == RecordState::Active)
            {
                self.fail(&format!(
                    "`{id}` lost its active journal record: {records:?}"
                ));
            }
        }
    }
}

fn kill_point(rng: &mut Rng, choices: &[(Api, Option<&str>, u32)]) -> Option<Fault> {
    if !rng.chance(50) {
        return None;
    }
    let (api, op, skip) = choices[rng.below(choices.len())];
    let mut f = Fault::new(api, FaultAction::None).skip(skip);
    f.operation = op.map(str::to_owned);
    Some(f)
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn sequence(seed: u64) {
    let mut rng = Rng(seed);
    let mut sim = Sim::new(seed);
    let mut alive: BTreeSet<String> = BTreeSet::new();
    let mut next_id = 0;
    let steps = 3 + rng.below(6);
    for _ in 0..steps {
        match rng.below(10) {
            0..=4 => {
                let id = format!("c{next_id}");
                next_id += 1;
                let hyperv = rng.chance(40);
                let mut args = vec![
                    s("instances"),
                    s("add"),
                    s("--id"),
                    id.clone(),
                    s("--credspec"),
                    sim.spec.display().to_string(),
                ];
                let mut points = vec![
                    (Api::GetServiceProperties, None, 0),
                    (Api::ModifyServiceSettings, Some("AddInstance"), 0),
                    (Api::GetServiceProperties, None, 1),
                ];
                if hyperv {
                    args.extend([s("--isolation"), s("hyperv"), s("--uvm"), s(UVM)]);
                    points.push((Api::ModifyComputeSystem, Some("Update"), 0));
                }
                let kill = kill_point(&mut rng, &points);
                match sim.run(args, kill) {
                    Some(0) => {
                        alive.insert(id);
                    }
                    None => {}
                    Some(code) => sim.fail(&format!("add {id} exited {code}")),
                }
            }
            5..=7 if !alive.is_empty() => {
                let id = alive
                    .iter()
                    .nth(rng.below(alive.len()))
                    .cloned()
                    .unwrap_or_default();
                let kill = kill_point(
                    &mut rng,
                    &[
                        (Api::GetServiceProperties, None, 0),
                        (Api::ModifyComputeSystem, Some("Remove"), 0),
                        (Api::ModifyServiceSettings, Some("RemoveInstance"), 0),
                    ],
                );
                alive.remove(&id);
                match sim.run(vec![s("instances"), s("remove"), id.clone()], kill) {
                    Some(0) | None => {}
                    Some(code) => sim.fail(&format!("remove {id} exited {code}")),
                }
            }
            _ => {
                let kill = kill_point(
                    &mut rng,
                    &[
                        (Api::GetServiceProperties, None, 0),
                        (Api::ModifyServiceSettings, Some("RemoveInstance"), 0),
                        (Api::ModifyComputeSystem, Some("Remove"), 0),
                    ],
                );
                match sim.run(vec![s("reconcile")], kill) {
                    Some(0) => sim.check_alive_kept(&alive),
                    None => {}
                    Some(code) => sim.fail(&format!("reconcile exited {code}")),
                }
            }
        }
    }
    // The runtime restarts and tells reconcile what is really running.
    let alive_file = sim.env.dir.path().join("alive.txt");
    std::fs::write(
        &alive_file,
        alive.iter().map(|a| format!("{a}\n")).collect::<String>(),
    )
    .unwrap();
    // An empty alive file is refused (issue 9): "nothing runs" is said with --alive-none.
    let final_args = if alive.is_empty() {
        vec![s("reconcile"), s("--alive-none")]
    } else {
        vec![
            s("reconcile"),
            s("--alive-file"),
            alive_file.display().to_string(),
        ]
    };
    let code = sim.run(final_args, None);
    if code != Some(0) {
        sim.fail(&format!("final reconcile exited {code:?}"));
    }
    let listed = sim.listed();
    if listed != alive {
        sim.fail(&format!(
            "leak or loss: HCS lists {listed:?}, expected {alive:?}"
        ));
    }
    sim.check_alive_kept(&alive);
    let records: BTreeSet<String> = sim.records().into_iter().map(|r| r.0).collect();
    if records != alive {
        sim.fail(&format!(
            "dangling journal records: {records:?}, expected {alive:?}"
        ));
    }
    // Every HvSocket entry belongs to an alive instance.
    let entries = sim.emu.hvsocket_entries().unwrap();
    let alive_services: BTreeSet<String> = sim
        .emu
        .instances()
        .unwrap()
        .into_iter()
        .filter_map(|i| i.hv_socket_config.map(|h| h.service_id))
        .collect();
    for (_, sid, _) in &entries {
        if !alive_services.contains(sid) {
            sim.fail(&format!("leaked HvSocket entry {sid}"));
        }
    }
    if Path::new(&sim.state())
        .join("journal/emulator/corrupt")
        .exists()
    {
        sim.fail("a journal record was corrupted");
    }
}

/// The seed of a default run: the same sequences every time.
const DEFAULT_SEED: u64 = 12345;

#[test]
fn crash_restart_simulation() {
    let base: u64 = match std::env::var("CREDGUARD_SIM_SEED").as_deref() {
        Err(_) => DEFAULT_SEED,
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("CREDGUARD_SIM_SEED={s:?}: neither a number nor `random`")),
    };
    let count: u64 = std::env::var("CREDGUARD_SIM_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    eprintln!("crash simulation: {count} sequences from seed {base}");
    for n in 0..count {
        sequence(base.wrapping_add(n));
    }
}
