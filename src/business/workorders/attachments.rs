//! Photos on a work order: what a crew shows of the job (the template's `photos` are required
//! before completion). An upload is checked by its first bytes — JPEG, PNG or WebP, whatever
//! the uploader declares — and by size (`[workorders] max_attachment_bytes`), then kept on the
//! records port beside the order: the bytes in chunks of [`CHUNK_BYTES`] (kind
//! `work_order_attachment`, id `WO-000123/3/0`, …; small enough for a ScyllaDB cell), the
//! listing (id, name, type, size, who, when) on the order itself.
//!
//! The chunks are written first (each created only if absent, so two uploads at once take
//! different numbers), then the order lists the attachment. A crash between the two leaves
//! chunks that no order lists — never a listed attachment without its bytes; a refused listing
//! (the order closed meanwhile) deletes its chunks.

use super::model::{AttachmentRef, Caller, OrderId, WorkOrder};
use super::service::WorkOrders;
use super::WorkOrdersError;
use crate::store::records::{RecordId, RecordKind, RecordPut, Records, RecordsError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Bytes per stored chunk.
pub const CHUNK_BYTES: usize = 512 * 1024;
/// The default upload limit (`[workorders] max_attachment_bytes`).
pub const DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 120;

/// An attachment's number on its order (1, 2, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttachmentId(pub u32);

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an upload's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
}

impl ImageType {
    /// By the magic bytes at the start of the file.
    pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageType::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(ImageType::Webp)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Webp => "image/webp",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ImageType::Jpeg => "jpg",
            ImageType::Png => "png",
            ImageType::Webp => "webp",
        }
    }
}

/// Why an upload was refused (before the order is looked at).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttachmentError {
    #[error("the file is {size} bytes; at most {max} are accepted")]
    TooLarge { size: u64, max: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("the file is not a JPEG, PNG or WebP image (checked by its content)")]
    NotAnImage,
    #[error("{order} has no attachment {id}")]
    Unknown { order: OrderId, id: AttachmentId },
}

/// An upload checked and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub kind: ImageType,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// An uploaded file's name as shown: no path, no control characters, at most
/// [`MAX_NAME_CHARS`] characters, trimmed; `default` when nothing is left.
pub fn display_name(name: Option<&str>, default: impl FnOnce() -> String) -> String {
    let base = name
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect::<String>();
    if base.trim().is_empty() {
        default()
    } else {
        base.trim().to_owned()
    }
}

impl Upload {
    /// Checks `bytes` (size and type) and tidies `name` (no path, no control characters; a
    /// default from the type when none is left).
    pub fn check(bytes: Vec<u8>, name: Option<&str>, max: u64) -> Result<Upload, AttachmentError> {
        let size = bytes.len() as u64;
        if size > max {
            return Err(AttachmentError::TooLarge { size, max });
        }
        if bytes.is_empty() {
            return Err(AttachmentError::Empty);
        }
        let kind = ImageType::sniff(&bytes).ok_or(AttachmentError::NotAnImage)?;
        let name = display_name(name, || format!("photo.{}", kind.extension()));
        Ok(Upload { kind, name, bytes })
    }
}

/// The chunks on the records port.
#[derive(Debug, Clone)]
pub struct AttachmentStore {
    records: Arc<dyn Records>,
    kind: RecordKind,
}

fn chunk_id(order: &OrderId, id: AttachmentId, n: usize) -> Result<RecordId, RecordsError> {
    RecordId::new(&format!("{order}/{id}/{n}"))
}

impl AttachmentStore {
    pub fn new(records: Arc<dyn Records>) -> Result<Self, WorkOrdersError> {
        Ok(Self {
            records,
            kind: RecordKind::new("work_order_attachment")?,
        })
    }

    /// Writes the chunks of attachment `id`; `Ok(false)` if that number is taken.
    async fn write(
        &self,
        order: &OrderId,
        id: AttachmentId,
        bytes: &[u8],
    ) -> Result<bool, WorkOrdersError> {
        for (n, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            let put = RecordPut {
                kind: self.kind.clone(),
                id: chunk_id(order, id, n)?,
                expected: None,
                body: chunk.to_vec(),
                index: vec![],
            };
            match self.records.put_record(put).await {
                Ok(_) => {}
                // Taken by another upload (or a crashed one): none of ours is left behind.
                Err(RecordsError::Conflict { .. }) if n == 0 => return Ok(false),
                Err(e) => {
                    self.remove(order, id, n).await;
                    return Err(e.into());
                }
            }
        }
        Ok(true)
    }

    /// Deletes the first `chunks` chunks of `id` (best effort: an orphan chunk is only space).
    async fn remove(&self, order: &OrderId, id: AttachmentId, chunks: usize) {
        for n in 0..chunks {
            let Ok(rid) = chunk_id(order, id, n) else {
                continue;
            };
            if let Ok(Some(r)) = self.records.record(&self.kind, &rid).await {
                if let Err(e) = self
                    .records
                    .delete_record(&self.kind, &rid, r.version)
                    .await
                {
                    tracing::warn!(%order, attachment = %id, error = %e, "an attachment chunk was not deleted");
                }
            }
        }
    }

    /// The bytes of a listed attachment.
    async fn read(
        &self,
        order: &OrderId,
        meta: &AttachmentRef,
    ) -> Result<Vec<u8>, WorkOrdersError> {
        let mut out = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        for n in 0..meta.chunks as usize {
            let rid = chunk_id(order, meta.id, n)?;
            let chunk = self
                .records
                .record(&self.kind, &rid)
                .await?
                .ok_or_else(|| {
                    WorkOrdersError::Corrupt(format!(
                        "attachment {} of {order} lost its chunk {n}",
                        meta.id
                    ))
                })?;
            out.extend_from_slice(&chunk.body);
        }
        if out.len() as u64 != meta.size {
            return Err(WorkOrdersError::Corrupt(format!(
                "attachment {} of {order} has {} bytes, listed as {}",
                meta.id,
                out.len(),
                meta.size
            )));
        }
        Ok(out)
    }
}

/// The number after the order's highest.
fn next_number(order: &WorkOrder) -> u32 {
    order.attachments.iter().map(|a| a.id.0).max().unwrap_or(0) + 1
}

impl WorkOrders {
    /// Stores `upload` on order `id` for `caller` (the assignee or a dispatcher, while the
    /// order is open) and lists it there.
    pub async fn attach(
        &self,
        id: &OrderId,
        upload: Upload,
        caller: &Caller,
    ) -> Result<AttachmentRef, WorkOrdersError> {
        let order = self.get(id).await?;
        order.may_attach(caller)?;
        let store = self.attachment_store();
        let chunks = upload.bytes.len().div_ceil(CHUNK_BYTES);
        let mut number = next_number(&order);
        // A number taken by a concurrent upload (or an orphan of a crash): the next one.
        let mut written = false;
        for _ in 0..64 {
            if store.write(id, AttachmentId(number), &upload.bytes).await? {
                written = true;
                break;
            }
            number += 1;
        }
        if !written {
            return Err(WorkOrdersError::Busy("the attachment numbers"));
        }
        let meta = AttachmentRef {
            id: AttachmentId(number),
            name: upload.name,
            content_type: upload.kind.content_type().to_owned(),
            size: upload.bytes.len() as u64,
            chunks: u32::try_from(chunks).unwrap_or(u32::MAX),
            by: caller.user.clone(),
            at: self.now(),
        };
        let listed = self
            .update(id, |o, _| {
                o.attach(meta.clone(), caller)?;
                Ok(true)
            })
            .await;
        if let Err(e) = listed {
            store.remove(id, meta.id, chunks).await;
            return Err(e);
        }
        Ok(meta)
    }

    /// An attachment's listing and bytes.
    pub async fn attachment(
        &self,
        order: &OrderId,
        id: AttachmentId,
    ) -> Result<(AttachmentRef, Vec<u8>), WorkOrdersError> {
        let o = self.get(order).await?;
        let meta = o
            .attachments
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| AttachmentError::Unknown {
                order: order.clone(),
                id,
            })?;
        let bytes = self.attachment_store().read(order, &meta).await?;
        Ok((meta, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

    #[test]
    fn images_are_known_by_their_first_bytes() {
        assert_eq!(ImageType::sniff(JPEG), Some(ImageType::Jpeg));
        assert_eq!(ImageType::sniff(PNG), Some(ImageType::Png));
        assert_eq!(ImageType::sniff(WEBP), Some(ImageType::Webp));
        for other in [
            &b"GIF89a......"[..],
            b"%PDF-1.7",
            b"<svg xmlns=",
            b"RIFF\x24\0\0\0WAVEfmt ",
            b"\x89PN",
            b"",
            &[0xFF, 0xD8],
        ] {
            assert_eq!(ImageType::sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn an_upload_is_checked_by_size_and_content_whatever_its_name() {
        let ok = Upload::check(PNG.to_vec(), Some("C:\\phone\\IMG_01.jpg"), 1024).unwrap();
        // Typed by content, named as uploaded (without the path).
        assert_eq!((ok.kind, ok.name.as_str()), (ImageType::Png, "IMG_01.jpg"));
        let ok = Upload::check(JPEG.to_vec(), Some("../\n"), 1024).unwrap();
        assert_eq!(ok.name, "photo.jpg");
        assert_eq!(
            Upload::check(JPEG.to_vec(), None, 4),
            Err(AttachmentError::TooLarge { size: 10, max: 4 })
        );
        // Exactly at the limit is fine.
        assert!(Upload::check(JPEG.to_vec(), None, JPEG.len() as u64).is_ok());
        assert_eq!(
            Upload::check(b"<html>".to_vec(), Some("x.jpg"), 1024),
            Err(AttachmentError::NotAnImage)
        );
        assert_eq!(
            Upload::check(vec![], None, 1024),
            Err(AttachmentError::Empty)
        );
        let long = "a".repeat(500);
        assert_eq!(
            Upload::check(PNG.to_vec(), Some(&long), 1024)
                .unwrap()
                .name
                .chars()
                .count(),
            MAX_NAME_CHARS
        );
    }
}
