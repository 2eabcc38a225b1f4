//! Generates the gRPC clients of containerd and the Kubernetes CRI from the crate's own
//! minimal .proto files (`proto/`), compiled by protox, a protobuf compiler in pure Rust:
//! building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/containerd.proto",
        "proto/namespaces.proto",
        "proto/events.proto",
        "proto/container_events.proto",
        "proto/cri.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
