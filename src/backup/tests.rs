use super::*;
use crate::store::embedded::EmbeddedStore;
use crate::store::wal::Wal;
use crate::store::{ChunkKey, Series, Store};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cistern-backup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A store with a chunk, a user and a write-ahead blob, and a backup of it in `<d>/backup`.
async fn backed_up(d: &Path) -> (EmbeddedStore, Wal, PathBuf, Manifest) {
    let store = EmbeddedStore::open(&d.join("data")).unwrap();
    let key = ChunkKey {
        point: "XM-0001/T1.level".parse().unwrap(),
        series: Series::Raw,
        start: Timestamp(120_000),
    };
    store.put_chunks(vec![(key, vec![9; 40])]).await.unwrap();
    store
        .put_state("auth_user", vec![("admin".into(), Some(b"{}".to_vec()))])
        .await
        .unwrap();
    let mut wal = Wal::open(&d.join("data")).unwrap();
    wal.append(3, b"accepted, not sealed").unwrap();
    let source = BackupSource {
        history: store.database(),
        wal: wal.database(),
    };
    let dest = d.join("backup");
    let m = make(&source, &dest, "node-a", &mut |_| {}).unwrap();
    (store, wal, dest, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_verifies_and_restores_into_an_empty_directory_only() {
    let d = dir("roundtrip");
    let (_store, _wal, dest, m) = backed_up(&d).await;
    assert_eq!(m.count(HISTORY_FILE, "chunks_raw_v2"), 1);
    assert_eq!(m.count(HISTORY_FILE, "state_v1"), 1);
    assert_eq!(m.count(WAL_FILE, "wal_v3"), 1);
    assert!(!partial_of(&dest).exists());
    assert_eq!(verify(&dest).unwrap(), m);
    assert!(matches!(
        make(
            &BackupSource {
                history: _store.database(),
                wal: _wal.database()
            },
            &dest,
            "node-a",
            &mut |_| {}
        ),
        Err(BackupError::Exists { .. })
    ));

    // A non-empty directory is refused and left as it was.
    let busy = d.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), b"x").unwrap();
    let err = restore(&dest, &busy).unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty { .. }) && err.is_refusal());
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    let fresh = d.join("fresh");
    restore(&dest, &fresh).unwrap();
    let store = EmbeddedStore::open(&fresh).unwrap();
    assert_eq!(store.state("auth_user").await.unwrap().len(), 1);
    let wal = Wal::open(&fresh).unwrap();
    assert_eq!(wal.read(0, u64::MAX).unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_truncated_or_newer_backup_is_refused_naming_the_file() {
    let d = dir("refused");
    let (_store, _wal, dest, _) = backed_up(&d).await;
    let copy = |name: &str| {
        let to = d.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for f in [HISTORY_FILE, WAL_FILE, MANIFEST_FILE] {
            std::fs::copy(dest.join(f), to.join(f)).unwrap();
        }
        to
    };

    // One flipped byte.
    let flipped = copy("flipped");
    let mut bytes = std::fs::read(flipped.join(HISTORY_FILE)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(flipped.join(HISTORY_FILE), &bytes).unwrap();
    let err = verify(&flipped).unwrap_err().to_string();
    assert!(
        err.contains("history.redb") && err.contains("SHA-256"),
        "{err}"
    );

    // Truncated.
    let cut = copy("cut");
    let bytes = std::fs::read(cut.join(WAL_FILE)).unwrap();
    std::fs::write(cut.join(WAL_FILE), &bytes[..bytes.len() / 3]).unwrap();
    let err = verify(&cut).unwrap_err().to_string();
    assert!(
        err.contains("wal.redb") && err.contains("truncated"),
        "{err}"
    );
    let target = d.join("target");
    assert!(restore(&cut, &target).unwrap_err().is_refusal());
    assert!(!target.exists(), "nothing written for a refused restore");

    // A newer format.
    let newer = copy("newer");
    let text = std::fs::read_to_string(newer.join(MANIFEST_FILE)).unwrap();
    std::fs::write(
        newer.join(MANIFEST_FILE),
        text.replace("\"version\": 1", "\"version\": 2"),
    )
    .unwrap();
    let err = verify(&newer).unwrap_err();
    assert!(matches!(err, BackupError::Version { .. }), "{err}");

    // A table this version does not know.
    let table = copy("table");
    let text = std::fs::read_to_string(table.join(MANIFEST_FILE)).unwrap();
    std::fs::write(
        table.join(MANIFEST_FILE),
        text.replace("\"state_v1\"", "\"state_v9\""),
    )
    .unwrap();
    let err = verify(&table).unwrap_err().to_string();
    assert!(err.contains("state_v9"), "{err}");

    // No manifest; a manifest naming another file.
    let bare = d.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    assert!(matches!(
        verify(&bare).unwrap_err(),
        BackupError::NotABackup { .. }
    ));
    let escape = copy("escape");
    let text = std::fs::read_to_string(escape.join(MANIFEST_FILE)).unwrap();
    std::fs::write(
        escape.join(MANIFEST_FILE),
        text.replace("\"wal.redb\"", "\"../wal.redb\""),
    )
    .unwrap();
    assert!(matches!(
        verify(&escape).unwrap_err(),
        BackupError::Corrupt { .. }
    ));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn scheduled_backups_are_named_by_time_and_pruned_to_the_newest() {
    let d = dir("prune");
    for i in 0..5 {
        let b = d.join(format!("{}2026120{i}T000000Z", schedule::SCHEDULED_PREFIX));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join(MANIFEST_FILE), b"{}").unwrap();
    }
    std::fs::create_dir_all(d.join(format!(
        "{}20261209T000000Z.partial",
        schedule::SCHEDULED_PREFIX
    )))
    .unwrap();
    std::fs::create_dir_all(d.join("not-ours")).unwrap();
    schedule::prune(&d, 2);
    let mut left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "cistern-backup-20261203T000000Z",
            "cistern-backup-20261204T000000Z",
            "not-ours"
        ]
    );
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_677_200);
    assert_eq!(
        schedule::scheduled_name(t),
        "cistern-backup-20261207T210000Z"
    );
    let _ = std::fs::remove_dir_all(&d);
}
