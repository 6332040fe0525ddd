//! Script API of files on nodes (see `src/primitives/files.rs`).

use rhai::plugin::*;

/// The script API of files on nodes.
#[export_module]
pub mod files_api {
    use rhai::{Dynamic, Map};

    use crate::engine::error::{raise, raise_keeping};
    use crate::engine::target::Target;
    use crate::host::{OnFailure, all_ok};

    /// The content of a file on a node, as text. Reads run in a dry run too. Raises when the
    /// file cannot be read, naming the node and the path.
    #[rhai_fn(return_raw)]
    pub fn read_file(
        ctx: NativeCallContext,
        node: Dynamic,
        path: &str,
    ) -> Result<String, Box<EvalAltResult>> {
        let host = crate::engine::host(&ctx)?;
        let target = Target::from_dynamic(&host, node)?;
        let [node] = target.nodes.as_slice() else {
            return Err(raise(crate::error::Error::Usage(
                "read_file reads from one node".into(),
            )));
        };
        let bytes = host.block_on(host.read_file(node, path)).map_err(raise)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Write `text` to `path` on a node (or every node of an array, in parallel), atomically:
    /// a temporary file beside it, then a rename; its directory is created. Only printed in a
    /// dry run.
    #[rhai_fn(return_raw)]
    pub fn write_file(
        ctx: NativeCallContext,
        target: Dynamic,
        path: &str,
        text: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        let host = crate::engine::host(&ctx)?;
        let target = Target::from_dynamic(&host, target)?;
        let results = host.block_on(host.fan_out(
            &format!("write {path}"),
            &target.nodes,
            OnFailure::Stop,
            |node| {
                let host = &host;
                async move { host.write_file(&node, path, text.as_bytes().to_vec()).await }
            },
        ));
        all_ok(results).map(|_| ()).map_err(raise)
    }

    /// Copy `path` from the node `from` to the same path on every node of `to` (a node or an
    /// array), through the host: read once, written atomically on each target in parallel.
    /// Returns the bytes written per target node (a map). Only printed in a dry run.
    #[rhai_fn(return_raw)]
    pub fn copy_file(
        ctx: NativeCallContext,
        from: Dynamic,
        path: &str,
        to: Dynamic,
    ) -> Result<Map, Box<EvalAltResult>> {
        let host = crate::engine::host(&ctx)?;
        let source = Target::from_dynamic(&host, from)?;
        let [source] = source.nodes.as_slice() else {
            return Err(raise(crate::error::Error::Usage(
                "copy_file copies from one node".into(),
            )));
        };
        let targets = Target::from_dynamic(&host, to)?;
        let results = host
            .block_on(crate::primitives::files::copy(
                &host,
                source,
                path,
                &targets.nodes,
            ))
            .map_err(raise)?;
        let kept: Map = results
            .iter()
            .filter_map(|(n, r)| {
                r.as_ref()
                    .ok()
                    .map(|b| (n.as_str().into(), Dynamic::from_int(*b as i64)))
            })
            .collect();
        all_ok(results).map_err(|e| raise_keeping(e, kept.clone()))?;
        Ok(kept)
    }
}
