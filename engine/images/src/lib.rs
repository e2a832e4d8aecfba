//! Berth's images: everything between a name like `busybox` and a root filesystem a
//! container can run in.
//!
//! Layers of this crate, bottom up: [`digest`] (sha256 digests and verifying readers),
//! [`manifest`] (the JSON documents), [`reference`] (image names, resolved as docker does), [`registry`] (the OCI
//! distribution client: manifests, blobs, auth), [`store`] (the content store: blobs by
//! digest, image records, garbage collection), [`unpack`] (a layer's tar stream applied to a
//! directory), [`snapshot`] (one read-only directory per layer by ChainID, an overlay per
//! container), [`runspec`] (an image's config turned into a runtime spec with docker's
//! defaults) and [`archive`] (`docker save` and OCI-layout archives in and out).
//!
//! Over them, [`images`] is the service the scheduler and the front ends call (open,
//! pull — in [`pull`] —, import, save, list, remove, prepare a container's root
//! filesystem and spec), with its [`metrics`].
//!
//! It depends on no other engine crate: the scheduler and the front ends use it.

pub mod archive;
pub mod digest;
pub mod images;
pub mod manifest;
pub mod metrics;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod runspec;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use digest::{Digest, DigestError, Verified};
pub use images::{Images, ImagesConfig, ImagesError, Observer, Prepared, RootfsMode};
