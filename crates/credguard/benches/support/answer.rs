//! Realistic answers to the CCG query (`HcsGetServiceProperties`), for the benchmarks.
//!
//! Each instance looks like the golden `s5_service_properties.json`: a 64-hex container id, a
//! cookie, an RPC endpoint and a full credential spec (the fixture `cs1.json` with its own
//! account name), and every fourth instance (and the wanted one) is Hyper-V isolated, with an
//! HvSocket config. The documents are written by the library's own writer, as the emulator
//! answers.

use credguard::wire::{
    ContainerCredentialGuardHvSocketServiceConfig, ContainerCredentialGuardInstance,
    ContainerCredentialGuardState, ContainerCredentialGuardSystemInfo, HvSocketServiceConfig,
    ServiceProperties, Transport, to_wire,
};

/// The sizes every query-answer benchmark runs at.
pub const SIZES: [usize; 5] = [1, 10, 100, 1_000, 10_000];

const SPEC: &str = include_str!("../../tests/fixtures/cs1.json");
const SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// Where the wanted instance is in the listing.
#[derive(Debug, Clone, Copy)]
pub enum Wanted {
    /// The last instance: `find_instance` must look at every other one first.
    Last,
    /// The instance in the middle.
    Middle,
}

impl Wanted {
    pub fn index(self, n: usize) -> usize {
        match self {
            Wanted::Last => n - 1,
            Wanted::Middle => n / 2,
        }
    }
}

/// A document answering the CCG query with `n` instances, and the id of the wanted one.
pub fn answer(n: usize, wanted: Wanted) -> (String, String) {
    let at = wanted.index(n);
    // The wanted instance is always Hyper-V isolated, so that it has the same shape at
    // every size.
    let instances: Vec<_> = (0..n).map(|i| instance(i, i % 4 == 3 || i == at)).collect();
    let id = instances[at].id.clone();
    let info = to_wire(&ContainerCredentialGuardSystemInfo { instances }).expect("serialises");
    (format!(r#"{{"Properties":[{info}]}}"#), id)
}

/// What a straightforward port does: decode the whole answer with the derived structs (every
/// instance materialised), then search. This is `list_instances` followed by a linear search.
pub fn full_decode(doc: &str, id: &str) -> Option<ContainerCredentialGuardInstance> {
    let props: ServiceProperties = serde_json::from_str(doc).expect("a ServiceProperties");
    let info: ContainerCredentialGuardSystemInfo =
        serde_json::from_str(props.properties[0].get()).expect("a system info");
    info.instances.into_iter().find(|i| i.id == id)
}

fn instance(i: usize, hyperv: bool) -> ContainerCredentialGuardInstance {
    let mut bits = Bits(i as u64);
    let id = bits.hex(64);
    let account = format!("webapp{i:05}");
    ContainerCredentialGuardInstance {
        credential_guard: Some(ContainerCredentialGuardState {
            cookie: bits.hex(48),
            rpc_endpoint: format!("CcgRpc_{}", &id[..8]),
            transport: if hyperv {
                Transport::HvSocket
            } else {
                Transport::Lrpc
            },
            credential_spec: SPEC.trim().replace("webapp01", &account),
        }),
        hv_socket_config: hyperv.then(|| ContainerCredentialGuardHvSocketServiceConfig {
            service_id: guid(&mut bits),
            service_config: Some(HvSocketServiceConfig {
                bind_security_descriptor: SDDL.to_owned(),
                connect_security_descriptor: SDDL.to_owned(),
                allow_wildcard_binds: true,
                disabled: false,
            }),
        }),
        id,
    }
}

fn guid(bits: &mut Bits) -> String {
    let h = bits.hex(32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Deterministic pseudo-random hex digits (splitmix64), so every run sees the same documents.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
}
