//! Script API of files on nodes (see `src/primitives/files.rs`).

use rhai::plugin::*;

/// The script API of files on nodes.
#[export_module]
pub mod files_api {
    use rhai::{Dynamic, Map};

    use crate::engine::call::{arg, fan_out, host, shaped};
    use crate::engine::target::Target;
    use crate::host::OnFailure;

    /// The content of a file on a node, as text. Reads run in a dry run too. Raises when the
    /// file cannot be read, naming the node and the path.
    #[rhai_fn(return_raw)]
    pub fn read_file(
        ctx: NativeCallContext,
        node: Dynamic,
        path: &str,
    ) -> Result<String, Box<EvalAltResult>> {
        let host = host(&ctx)?;
        let node = arg(
            &ctx,
            Target::from_dynamic(&host, node).and_then(|t| t.only("read_file reads from one node")),
        )?;
        let bytes = arg(&ctx, host.block_on(host.read_file(&node, path)))?;
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
        fan_out(
            &ctx,
            target,
            async |host, nodes| {
                Ok(host
                    .fan_out(
                        &format!("write {path}"),
                        nodes,
                        OnFailure::Stop,
                        |node| async move {
                            host.write_file(&node, path, text.as_bytes().to_vec()).await
                        },
                    )
                    .await)
            },
            |()| Dynamic::UNIT,
        )
        .map(|_| ())
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
        let host = host(&ctx)?;
        let source = arg(
            &ctx,
            Target::from_dynamic(&host, from)
                .and_then(|t| t.only("copy_file copies from one node")),
        )?;
        let targets = arg(&ctx, Target::from_dynamic(&host, to))?;
        let results = arg(
            &ctx,
            host.block_on(crate::primitives::files::copy(
                &host,
                &source,
                path,
                &targets.nodes,
            )),
        )?;
        let copied = shaped(&ctx, None, results, |b| Dynamic::from_int(b as i64))?;
        Ok(copied.cast::<Map>())
    }
}
