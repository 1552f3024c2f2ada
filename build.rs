//! Installs the page's third-party code (hls.js, pinned in web/package.json and
//! web/package-lock.json) from npm into the build directory, so that the binary embeds it and
//! nothing third-party is committed. Without npm the build still succeeds: the page then has
//! no LL-HLS fallback and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The ES module build of hls.js, as the package ships it.
const HLSJS: &str = "node_modules/hls.js/dist/hls.min.mjs";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_hlsjs)");
    println!("cargo::rerun-if-changed=web/package.json");
    println!("cargo::rerun-if-changed=web/package-lock.json");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    match install(&out) {
        Ok(hlsjs) => {
            println!("cargo::rustc-cfg=has_hlsjs");
            println!("cargo::rustc-env=LOOKOUT_HLSJS={}", hlsjs.display());
        }
        Err(reason) => println!("cargo::warning=building without hls.js, so the page has no LL-HLS fallback: {reason}"),
    }
}

fn install(out: &Path) -> Result<PathBuf, String> {
    let hlsjs = out.join(HLSJS);
    let lock = std::fs::read("web/package-lock.json").map_err(|e| format!("cannot read web/package-lock.json: {e}"))?;
    // Installed already from this very lockfile: nothing to do (and no network needed).
    if hlsjs.exists() && std::fs::read(out.join("package-lock.json")).ok().as_deref() == Some(&lock[..]) {
        return Ok(hlsjs);
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    std::fs::copy("web/package.json", out.join("package.json")).map_err(|e| format!("cannot copy web/package.json: {e}"))?;
    std::fs::write(out.join("package-lock.json"), &lock).map_err(|e| format!("cannot copy web/package-lock.json: {e}"))?;
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline"])
        .current_dir(out)
        .status()
        .map_err(|e| format!("cannot run npm ({e}); install Node.js and npm"))?;
    if !status.success() {
        // Leave no lockfile behind, so that the next build tries again.
        let _ = std::fs::remove_file(out.join("package-lock.json"));
        return Err(format!("npm ci failed ({status})"));
    }
    if hlsjs.exists() {
        Ok(hlsjs)
    } else {
        Err(format!("npm installed hls.js without {HLSJS}"))
    }
}
