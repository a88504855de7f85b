#!/usr/bin/env bash
# Sets up a fresh knowledge base for `cargo run -p cutter-examples --example live_run`, as
# docs/first-live-run.md steps 1-5 do: a database, a gpg backup key, `cutter init`, `db init`,
# the expected grant sha, an approver key trusted by the knowledge base, the sample registered
# and rehearsed. Prints the folder it made (its cutter.toml, the approver key `ada.key`).
#
#   export CUTTER_ADMIN_PASSWORD=... CUTTER_EXEC_PASSWORD=... CUTTER_VERIFY_PASSWORD=...
#   dir=$(examples/live-setup.sh) && cargo run -p cutter-examples --example live_run -- \
#       "$dir/cutter.toml" samples/sample-charter.md SAMPLE-CHARTER "$dir/ada.key" "Ada Approver"
#
# The three roles' passwords are read from CUTTER_ADMIN_PASSWORD, CUTTER_EXEC_PASSWORD and
# CUTTER_VERIFY_PASSWORD (the names `cutter init` writes into the config): export them before
# both this script and the example. Needs PostgreSQL on 127.0.0.1:5432 where `postgres` may
# create databases and roles, pg_dump and gpg. Remove it with `examples/live-setup.sh --drop DIR`.
set -euo pipefail
cd "$(dirname "$0")/.."
cutter() { cargo run -q --locked -p cutter-cli -- "$@"; }
for v in CUTTER_ADMIN_PASSWORD CUTTER_EXEC_PASSWORD CUTTER_VERIFY_PASSWORD; do
    [[ -n "${!v:-}" ]] || { echo "export $v first (the password of a cutter role)" >&2; exit 2; }
done
if [[ "${1:-}" == --drop ]]; then
    db=$(cat "$2/database")
    dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
    for r in admin exec verify; do psql -h 127.0.0.1 -U postgres -qc "DROP ROLE IF EXISTS cutter_${db}_$r" postgres; done
    rm -rf "$2"
    exit 0
fi
dir=$(mktemp -d)
db="cutter_example_$(date +%s)_$$"
echo "$db" >"$dir/database"
export GNUPGHOME="$dir/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key "cutter example backups <backup@example.invalid>" rsa2048 encr never 2>/dev/null
fpr=$(gpg --batch --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
{
    createdb -h 127.0.0.1 -U postgres "$db"
    cutter init --dir "$dir" --database-url "postgres://postgres@127.0.0.1:5432/$db" --backup-recipient "$fpr"
    # The example keeps its own GnuPG home, named in the config for every later command.
    sed -i "s|^gnupg_home = \"\"|gnupg_home = \"$GNUPGHOME\"|" "$dir/cutter.toml"
    cutter --config "$dir/cutter.toml" db init
    cutter --config "$dir/cutter.toml" grants expect "$(cutter --config "$dir/cutter.toml" grants show --sha)"
    cutter --config "$dir/cutter.toml" keygen --out "$dir/ada"
    cutter --config "$dir/cutter.toml" approve trust "$dir/ada.pub" --name "Ada Approver"
    cutter --config "$dir/cutter.toml" source register samples/sample-charter.md --document-id SAMPLE-CHARTER --title "Sample charter"
    cutter --config "$dir/cutter.toml" orchestrate cut samples/sample-charter.md --document-id SAMPLE-CHARTER --mode dry-run --self-approve
} >&2
echo "$dir"
