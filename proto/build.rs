//! Compiles the control-plane protos with protox, so no system `protoc` is needed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "strata/controlplane/v1/common.proto",
        "strata/controlplane/v1/catalog.proto",
        "strata/controlplane/v1/identity.proto",
        "strata/controlplane/v1/usage.proto",
        "strata/admin/v1/admin.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("strata_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // The timing layer's `method` label values: every rpc of every service,
    // which must be unique across the services (the label has no service part).
    let mut methods: Vec<String> = Vec::new();
    for m in fds.file.iter().flat_map(|f| &f.service).flat_map(|s| &s.method) {
        let name = m.name().to_owned();
        if methods.contains(&name) {
            return Err(format!("rpc {name} is declared by two services; method names must be unique").into());
        }
        methods.push(name);
    }
    let list: String = methods.iter().map(|m| format!("    {m:?},\n")).collect();
    std::fs::write(
        out.join("methods.rs"),
        format!("pub const METHODS: [&str; {}] = [\n{list}];\n", methods.len()),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
