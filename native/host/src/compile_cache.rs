//! `CompileCache`: compiled components kept on disk, keyed by the SHA-256 of
//! the `.wasm`, so a host starts in milliseconds instead of recompiling the
//! component with Cranelift every time (seconds on a small machine).
//!
//! A cached file is only ever one this host wrote with
//! [`Component::serialize`], renamed into place whole. wasmtime checks its
//! header against the running engine (version and settings) when loading
//! it; a file from another build or configuration is not loaded, but
//! recompiled and replaced.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompileCache { dir: dir.into() }
    }

    /// Where the cache lives unless told: `$XDG_CACHE_HOME/chatroom`, or
    /// `~/.cache/chatroom`; `None` when neither is known.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".cache"))
            })?;
        Some(base.join("chatroom"))
    }

    /// The component in `wasm_file`, from the cache when it holds it, else
    /// compiled and then stored (a failure to store is only logged).
    pub fn load(&self, engine: &Engine, wasm_file: &Path) -> anyhow::Result<Component> {
        let wasm = std::fs::read(wasm_file)
            .with_context(|| format!("cannot read {}", wasm_file.display()))?;
        let cached = self.dir.join(format!("{:x}.cwasm", Sha256::digest(&wasm)));
        if cached.is_file() {
            // SAFETY: files in the cache are written only by `store` below,
            // from `Component::serialize` of this same wasmtime, and renamed
            // into place whole; wasmtime rejects a file made by another
            // version or configuration.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(component) => {
                    tracing::debug!(file = %cached.display(), "compiled component from the cache");
                    return Ok(component);
                }
                Err(e) => {
                    tracing::info!(error = %e, file = %cached.display(), "cached component unusable; recompiling");
                }
            }
        }
        let component = Component::new(engine, &wasm).map_err(anyhow::Error::from)?;
        if let Err(e) = self.store(&component, &cached) {
            tracing::warn!(error = %format!("{e:#}"), dir = %self.dir.display(), "cannot cache the compiled component");
        }
        Ok(component)
    }

    fn store(&self, component: &Component, cached: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize().map_err(anyhow::Error::from)?;
        let partial = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::fs::write(partial.path(), bytes)?;
        partial.persist(cached)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(component (core module (func (export "f"))))"#;

    #[test]
    fn a_second_load_comes_from_the_cache_and_a_bad_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("c.wasm");
        std::fs::write(&wasm, wat::parse_str(WAT).unwrap()).unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let engine = Engine::default();

        cache.load(&engine, &wasm).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "one compiled file: {files:?}");
        let cached = &files[0];
        let written = std::fs::metadata(cached).unwrap().modified().unwrap();

        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.load(&engine, &wasm).unwrap();
        let again = std::fs::metadata(cached).unwrap().modified().unwrap();
        assert_eq!(written, again, "a cache hit does not rewrite the file");

        std::fs::write(cached, b"not a compiled component").unwrap();
        cache.load(&engine, &wasm).unwrap();
        let replaced = std::fs::read(cached).unwrap();
        assert_ne!(replaced, b"not a compiled component");
        // SAFETY: written by `store` just above.
        unsafe { Component::deserialize_file(&engine, cached) }.unwrap();
    }
}
