//! Image commands: `images` (`image ls`), `rmi` (`image rm`), `image inspect`,
//! `image import` (the archive streamed as the request body), `image save` (the
//! archive streamed to a file or a pipe), `image prune`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{parse, settle, Ctx};
use crate::args::{ImageAction, ImagesArgs, RmiArgs, SaveArgs};
use crate::client::{image_path, with_query, ReaderBody};
use crate::error::CliError;
use crate::table::Table;
use crate::time::age;
use crate::view::{short_digest, ImageView};

/// `image …`.
pub async fn image(ctx: &Ctx, action: ImageAction) -> Result<u8, CliError> {
    match action {
        ImageAction::Ls(a) => list(ctx, a).await,
        ImageAction::Pull(a) => super::pull::pull(ctx, a).await,
        ImageAction::Rm(a) => remove(ctx, a).await,
        ImageAction::Inspect(a) => inspect(ctx, &a.images).await,
        ImageAction::Import { file } => import(ctx, &file).await,
        ImageAction::Save(a) => save(ctx, a).await,
        ImageAction::Prune => prune(ctx).await,
    }
}

/// The table of `images` (NAME, ID, SIZE, CREATED, LAYERS) as of `now`.
pub fn table(images: &[ImageView], now: SystemTime) -> Table {
    let mut t = Table::new(&["NAME", "ID", "SIZE", "CREATED", "LAYERS"]);
    for i in images {
        t.row(vec![
            i.name.clone(),
            short_digest(&i.id).to_owned(),
            super::stats::bytes(i.size),
            age(i.created.as_deref(), now),
            i.layers.to_string(),
        ]);
    }
    t
}

/// Each image id once, in the order listed.
fn ids(images: &[ImageView]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    images
        .iter()
        .map(|i| i.id.as_str())
        .filter(|id| seen.insert(*id))
        .collect()
}

/// `images [-q] [--format table|json]`.
pub async fn list(ctx: &Ctx, args: ImagesArgs) -> Result<u8, CliError> {
    let (raw, value) = ctx.client.json(Method::GET, "/v1/images", None).await?;
    if ctx.json || args.format == "json" {
        ctx.raw_json(&raw)?;
        return Ok(0);
    }
    let images: Vec<ImageView> = parse(value, "GET /v1/images")?;
    if args.quiet {
        for id in ids(&images) {
            ctx.line(id)?;
        }
        return Ok(0);
    }
    ctx.out(table(&images, SystemTime::now()).render().as_bytes())?;
    Ok(0)
}

/// `rmi [-f] IMAGE…`: prints each image's full name as it goes (`--json`: the daemon's
/// summary of it).
pub async fn remove(ctx: &Ctx, args: RmiArgs) -> Result<u8, CliError> {
    let force = args.force.then(|| "true".to_owned());
    let mut status = 0;
    for name in &args.images {
        let path = with_query(&image_path(name), &[("force", force.clone())]);
        let result = match ctx.client.json(Method::DELETE, &path, None).await {
            Ok((raw, _)) if ctx.json => ctx.raw_json(&raw),
            Ok((_, value)) => {
                let gone: ImageView = serde_json::from_value(value).unwrap_or_default();
                let shown = if gone.name.is_empty() {
                    name
                } else {
                    &gone.name
                };
                ctx.line(&format!("Deleted {shown}"))
            }
            Err(e) => Err(e),
        };
        settle(result, &mut status)?;
    }
    Ok(status)
}

/// `image inspect IMAGE…`: one image as pretty JSON, several as an array (`--json`: each
/// as it came, one per line).
pub async fn inspect(ctx: &Ctx, names: &[String]) -> Result<u8, CliError> {
    let (mut found, status) = super::fetch_each(ctx, names.iter().map(|n| image_path(n))).await?;
    if !ctx.json && !found.is_empty() {
        let shown = if names.len() == 1 {
            found.remove(0)
        } else {
            Value::Array(found)
        };
        super::print_pretty(ctx, &shown, "GET /v1/images/{name}")?;
    }
    Ok(status)
}

/// The archive to import: stdin (not a terminal) or a file, with its size when known.
async fn archive(file: &str) -> Result<(crate::client::Payload, Option<u64>), CliError> {
    if file == "-" {
        if std::io::stdin().is_terminal() {
            return Err(CliError::Usage(
                "image import -: stdin is a terminal, not an archive (redirect a file or pipe one)"
                    .into(),
            ));
        }
        return Ok((ReaderBody::payload(tokio::io::stdin()), None));
    }
    let opened = tokio::fs::File::open(file).await;
    let f = opened.map_err(|source| CliError::File {
        path: file.to_owned(),
        source,
    })?;
    let meta = f.metadata().await.map_err(|source| CliError::File {
        path: file.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        return Err(CliError::Usage(format!(
            "image import {file}: a directory, not an archive"
        )));
    }
    let length = meta.is_file().then_some(meta.len());
    Ok((ReaderBody::payload(f), length))
}

/// `image import FILE|-`: the archive streamed as the body; prints each image imported.
pub async fn import(ctx: &Ctx, file: &str) -> Result<u8, CliError> {
    let (payload, length) = archive(file).await?;
    let path = "/v1/images/import";
    let request = format!("POST {path}");
    let resp = ctx
        .client
        .send_body(
            Method::POST,
            path,
            Some("application/x-tar"),
            length,
            payload,
        )
        .await?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
        text.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(CliError::from_answer(status, &text));
    }
    if ctx.json {
        ctx.raw_json(&text)?;
        return Ok(0);
    }
    let mut value: Value = serde_json::from_slice(&text).map_err(|e| CliError::Protocol {
        request: request.clone(),
        detail: format!("not JSON: {e}"),
    })?;
    let images: Vec<ImageView> = parse(value["images"].take(), &request)?;
    for line in imported(&images) {
        ctx.line(&line)?;
    }
    Ok(0)
}

/// What `image import` prints for the images imported.
fn imported(images: &[ImageView]) -> Vec<String> {
    images
        .iter()
        .map(|i| format!("Imported {} (id {})", i.name, i.id))
        .collect()
}

/// Where `image save` writes: a file (made beside its final name and renamed into
/// place only when complete), or stdout.
enum Sink {
    File {
        file: tokio::fs::File,
        partial: PathBuf,
        target: PathBuf,
    },
    Stdout(tokio::io::Stdout),
}

impl Sink {
    /// The sink for `-o output` (absent or `-`: stdout, refused on a terminal).
    async fn open(output: Option<&Path>) -> Result<Sink, CliError> {
        let target = match output {
            Some(p) if p != Path::new("-") => p.to_path_buf(),
            _ if std::io::stdout().is_terminal() => {
                return Err(CliError::Usage(
                    "image save: refusing to write an archive to a terminal (give -o FILE, or redirect stdout)".into(),
                ))
            }
            _ => return Ok(Sink::Stdout(tokio::io::stdout())),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else {
            return Err(CliError::Usage(format!(
                "image save -o {}: not a file name",
                target.display()
            )));
        };
        let partial = target.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|source| CliError::File {
                path: partial.display().to_string(),
                source,
            })?;
        Ok(Sink::File {
            file,
            partial,
            target,
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), CliError> {
        match self {
            Sink::File { file, partial, .. } => {
                file.write_all(chunk)
                    .await
                    .map_err(|source| CliError::File {
                        path: partial.display().to_string(),
                        source,
                    })
            }
            Sink::Stdout(out) => Ok(out.write_all(chunk).await?),
        }
    }

    /// The archive is complete: flush it and put the file in place.
    async fn commit(self) -> Result<(), CliError> {
        match self {
            Sink::File {
                mut file,
                partial,
                target,
            } => {
                let synced = async {
                    file.flush().await?;
                    file.sync_all().await?;
                    tokio::fs::rename(&partial, &target).await
                };
                if let Err(source) = synced.await {
                    let _ = std::fs::remove_file(&partial);
                    return Err(CliError::File {
                        path: target.display().to_string(),
                        source,
                    });
                }
                Ok(())
            }
            Sink::Stdout(mut out) => Ok(out.flush().await?),
        }
    }

    /// The archive is not complete: leave no file that looks like one.
    fn discard(self) {
        if let Sink::File { partial, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// `image save [-o FILE] IMAGE…`: the daemon's archive, streamed.
pub async fn save(ctx: &Ctx, args: SaveArgs) -> Result<u8, CliError> {
    let path = "/v1/images/save";
    let request = format!("POST {path}");
    let mut sink = Sink::open(args.output.as_deref()).await?;
    let body = json!({ "names": args.images });
    let copied = async {
        let resp = ctx.client.send(Method::POST, path, Some(&body)).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let mut text = Vec::new();
            while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
                text.extend_from_slice(&chunk);
            }
            return Err(CliError::from_answer(status, &text));
        }
        while let Some(chunk) = ctx.client.next_chunk(&request, &mut body).await? {
            sink.write(&chunk).await?;
        }
        Ok(())
    }
    .await;
    match copied {
        Ok(()) => sink.commit().await.map(|()| 0),
        Err(e) => {
            sink.discard();
            Err(e)
        }
    }
}

/// `image prune`: prints the bytes freed.
pub async fn prune(ctx: &Ctx) -> Result<u8, CliError> {
    let (raw, value) = ctx
        .client
        .json(Method::POST, "/v1/images/prune", None)
        .await?;
    if ctx.json {
        ctx.raw_json(&raw)?;
    } else {
        let freed = value["bytes_freed"].as_u64().unwrap_or(0);
        ctx.line(&format!("Freed {}", super::stats::bytes(freed)))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ImageSummary objects as the OpenAPI document describes them.
    const LIST: &str = r#"[
        {"name": "127.0.0.1:5000/test/busybox:latest",
         "id": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
         "digest": "sha256:aaaa", "size": 1234567, "created": "2026-01-01T00:00:00Z",
         "layers": 1},
        {"name": "docker.io/library/busybox:1",
         "id": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
         "digest": "sha256:bbbb", "size": 512, "created": "2025-12-31T22:00:00Z",
         "layers": 12}
    ]"#;

    #[test]
    fn image_rows_from_the_list() {
        let images: Vec<ImageView> = serde_json::from_str(LIST).unwrap();
        let now = humantime::parse_rfc3339("2026-01-01T00:00:30Z").unwrap();
        assert_eq!(
            table(&images, now).render(),
            "NAME                                 ID             SIZE     CREATED   LAYERS\n\
             127.0.0.1:5000/test/busybox:latest   2cf24dba5fb0   1.2MiB   30s ago   1\n\
             docker.io/library/busybox:1          2cf24dba5fb0   512B     2h ago    12\n"
        );
        assert_eq!(
            ids(&images),
            ["sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"]
        );
    }

    #[test]
    fn imports_name_each_image() {
        let value: Value = serde_json::from_str(&format!(r#"{{"images": {LIST}}}"#)).unwrap();
        let images: Vec<ImageView> = parse(value["images"].clone(), "POST x").unwrap();
        assert_eq!(
            imported(&images)[1],
            "Imported docker.io/library/busybox:1 (id sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824)"
        );
        assert!(parse::<Vec<ImageView>>(json!({"not": "a list"}), "GET /v1/images").is_err());
    }
}
