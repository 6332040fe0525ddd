//! Files on nodes: read one, write one atomically, copy one from a node to others through the
//! host (storage nodes need not trust each other over SSH).

use crate::error::Result;
use crate::host::{Host, OnFailure, PerNode};
use crate::inventory::Node;

/// Copy `path` from `source` to the same path on every node of `targets`, in parallel: the
/// file is read once, then written atomically on each target. Returns the bytes written per
/// target.
pub async fn copy(
    host: &Host,
    source: &Node,
    path: &str,
    targets: &[Node],
) -> Result<PerNode<u64>> {
    let bytes = host.read_file(source, path).await?;
    let size = bytes.len() as u64;
    let bytes = &bytes;
    Ok(host
        .fan_out(
            &format!("copy {path}"),
            targets,
            OnFailure::Stop,
            |node| async move {
                host.write_file(&node, path, bytes.clone())
                    .await
                    .map(|()| size)
            },
        )
        .await)
}

/// The bytes of `path` on `node`, or `None` when it has no such file (`test -f`, then a read;
/// read-only: runs in a dry run too). Any other failure to read it is an error.
pub async fn read_optional(host: &Host, node: &Node, path: &str) -> Result<Option<Vec<u8>>> {
    let line = crate::quote::join(&["test", "-f", path])?;
    let out = host
        .exec(node, &line, crate::host::Effect::Read, None)
        .await?;
    match out.code {
        0 => host.read_file(node, path).await.map(Some),
        1 => Ok(None),
        _ => Err(crate::host::failed(&node.name, &line, &out)),
    }
}
