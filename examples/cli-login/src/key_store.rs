//! Where the key is kept: the OS keychain when one answers (macOS Keychain, Windows Credential
//! Manager, the Secret Service of a Linux desktop), else a file readable by its owner only
//! (mode 0600) under the user's config folder. `--key-file` (or `MODELGATES_KEY_FILE`) chooses
//! the file and skips the keychain. The key never goes in argv, and is never printed whole.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use modelgates_oauth_core::ApiKey;

/// The keychain entry's service name.
const SERVICE: &str = "modelgates-cli-login";
/// The keychain entry's user name: one key per OS user.
const ENTRY: &str = "api-key";

/// Where the key is kept.
pub(crate) enum KeyStore {
    /// The OS keychain, and the key it held when asked (read once: a keychain may ask the
    /// person's permission at each read).
    Keychain {
        entry: keyring::Entry,
        kept: Option<ApiKey>,
    },
    /// A 0600 file.
    File(PathBuf),
}

impl KeyStore {
    /// `key_file` when given; else the keychain if one answers; else the default file.
    pub(crate) fn choose(key_file: Option<PathBuf>) -> Result<Self, String> {
        if let Some(path) = key_file {
            return Ok(Self::File(path));
        }
        if let Some((entry, kept)) = keychain() {
            return Ok(Self::Keychain { entry, kept });
        }
        default_key_file()
            .map(Self::File)
            .ok_or_else(|| "no keychain and no home folder: pass --key-file".to_owned())
    }

    /// Where, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Keychain { .. } => "the OS keychain".to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// Keeps `key`, replacing any older one.
    pub(crate) fn save(&self, key: &ApiKey) -> Result<(), String> {
        match self {
            Self::Keychain { entry, .. } => entry
                .set_password(key.expose_secret())
                .map_err(|e| format!("cannot keep the key in the OS keychain: {e}")),
            Self::File(path) => write_private(path, key.expose_secret())
                .map_err(|e| format!("cannot write {}: {e}", path.display())),
        }
    }

    /// The key kept, if any.
    pub(crate) fn load(&self) -> Result<Option<ApiKey>, String> {
        match self {
            Self::Keychain { kept, .. } => Ok(kept.clone()),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(key_in(&text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            },
        }
    }

    /// Forgets the key; whether there was one.
    pub(crate) fn delete(&self) -> Result<bool, String> {
        match self {
            Self::Keychain { entry, .. } => match entry.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(format!("cannot remove the key from the OS keychain: {e}")),
            },
            Self::File(path) => match std::fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
            },
        }
    }
}

/// The keychain entry and the key it holds, when a keychain answers: reading an entry that
/// does not exist must say "no entry", not fail (a Linux machine without a Secret Service, a
/// container, CI).
fn keychain() -> Option<(keyring::Entry, Option<ApiKey>)> {
    let entry = keyring::Entry::new(SERVICE, ENTRY).ok()?;
    let kept = match entry.get_password() {
        Ok(text) => key_in(&text),
        Err(keyring::Error::NoEntry) => None,
        Err(_) => return None,
    };
    Some((entry, kept))
}

/// The key in `text` as it was kept (a trailing newline in a file), if any.
fn key_in(text: &str) -> Option<ApiKey> {
    let text = text.trim();
    (!text.is_empty()).then(|| ApiKey::new(text))
}

/// `$XDG_CONFIG_HOME/modelgates/key`, else `~/.config/modelgates/key`.
fn default_key_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("modelgates").join("key"))
}

/// Writes `secret` to `path`, readable by its owner only, replacing any older file.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` applies only to new files: tighten an existing one too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
