//! Generates the storage codec's protobuf types from `proto/`.

fn main() {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var_os("PROTOC").is_none() && which_protoc().is_none() {
        panic!(
            "protoc was not found: install it (Debian: `apt-get install protobuf-compiler`, \
             or run scripts/setup.sh) or set PROTOC to its path"
        );
    }
    prost_build::Config::new()
        .compile_protos(&["proto/tracemap/storage/v1/spans.proto"], &["proto"])
        .expect("compiling proto/tracemap/storage/v1/spans.proto");
}

fn which_protoc() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("protoc"))
        .find(|candidate| candidate.is_file())
}
