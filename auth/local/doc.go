// Package local is the local users provider: a YAML users file with
// Argon2id password hashes, groups, a disabled flag, the factors each user
// must show, TOTP secrets, certificate pins and the backend account the
// user maps to.
//
// It owns:
//
//   - the users file format (Parse, File.Marshal) and its atomic edits
//     (Edit: a lock on PATH.lock, a temporary file, fsync, rename), which
//     "ftpsgate users" uses;
//   - Argon2id hashes as PHC strings (HashPassword, ParseHash), with the
//     parameters a stored hash carries used to check it;
//   - the password policy (Policy: length, character classes, not the user
//     name, no reuse of recent passwords, expiry and its warning);
//   - Store, an auth.Provider named "local" and an auth.Profiles: it loads
//     the file (refusing one that group or others may write), reloads it
//     on Reload (SIGHUP) or when Watch sees its content change, and keeps
//     the users it had when a new version fails to load. Every password
//     check runs in one of a bounded number of slots, so a login flood
//     cannot take every CPU; Burn spends one check's work for a user no
//     provider knows.
//
// An entry without a password is a profile only: the TOTP secret, pins and
// backend mapping of a user another provider authenticates. Verify answers
// auth.ErrUnknownUser for it (auth.ErrDisabled when it is disabled), and
// Profile returns it. A disabled user has no profile.
//
// Backend passwords come from backend_password_file or
// backend_password_env when the file is loaded, never from the YAML.
// No error or log line carries a password, hash or secret.
package local
