//! What a camera's points mean.

use crate::alarms::Bookmark;
use crate::device::{DeviceBehaviour, PointTable};
use cistern_schemas::inventory::CameraSpec;
use cistern_schemas::{DeviceKind, Timestamp};
use serde::Serialize;

/// Derived state of a camera.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraDerived {
    pub name: String,
    pub online: Option<bool>,
    pub recording: Option<bool>,
    pub motion: Option<bool>,
    /// Online and recording: the camera does its job.
    pub healthy: Option<bool>,
    /// Recordings bookmarked by alarms (intrusion), newest last.
    pub bookmarks: Vec<Bookmark>,
}

/// Bookmarks a camera lists (the store keeps them all).
const BOOKMARKS_KEPT: usize = 20;

/// The camera's kind-specific state: its recent bookmarks.
#[derive(Debug, Default)]
pub struct CameraBehaviour {
    bookmarks: Vec<Bookmark>,
}

impl DeviceBehaviour for CameraBehaviour {
    const KIND: DeviceKind = DeviceKind::Camera;
    type Spec = CameraSpec;
    type Derived = CameraDerived;

    fn derive(&self, spec: &CameraSpec, table: &PointTable, _now: Timestamp) -> CameraDerived {
        let online = table.good_flag("online");
        let recording = table.good_flag("recording");
        CameraDerived {
            name: spec.name.clone(),
            online,
            recording,
            motion: table.good_flag("motion"),
            healthy: online.zip(recording).map(|(o, r)| o && r),
            bookmarks: self.bookmarks.clone(),
        }
    }

    fn bookmark(&mut self, bookmark: Bookmark) {
        if self.bookmarks.len() >= BOOKMARKS_KEPT {
            self.bookmarks.remove(0);
        }
        self.bookmarks.push(bookmark);
    }
}
