#!/usr/bin/env bash
# Install (or remove) the kneeroll daemon as a systemd service on Raspberry Pi
# OS Bookworm. Run it from the source tree as root:
#
#   sudo systemd/install.sh               install or upgrade, enable, start
#   sudo systemd/install.sh --uninstall   stop and remove; keep config and data
#   sudo systemd/install.sh --uninstall --purge   ... and config, data, user
#   systemd/install.sh --dry-run          print what would be run
#
# Running it again is safe: it upgrades the code, refreshes the unit, and never
# overwrites /etc/kneeroll/config.toml.
set -euo pipefail

readonly SERVICE_USER=kneeroll
readonly DEVICE_GROUPS=(i2c gpio dialout)
readonly UNIT_NAME=kneeroll.service
readonly WEB_USER=kneeroll-web
readonly WEB_UNIT_NAME=kneeroll-web.service
# Debian's builds, seen through --system-site-packages: lgpio is not on PyPI
# for this OS, and building NumPy on a 512 MB Zero 2 W is not an option.
readonly APT_PACKAGES=(python3-venv python3-pip python3-lgpio python3-numpy python3-gpiozero python3-serial)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE_DIR="$(dirname "$SCRIPT_DIR")"
readonly SCRIPT_DIR SOURCE_DIR

# Filled in by parse_args.
ROOT="${KNEEROLL_ROOT:-}"
ACTION=install
PURGE=false
DRY_RUN=false

usage() {
    cat <<EOF
Usage: $(basename "$0") [--uninstall [--purge]] [--dry-run] [--root DIR]

Installs kneeroll into /opt/kneeroll, its configuration into /etc/kneeroll,
and the kneeroll.service and kneeroll-web.service units; enables I2C and the UART;
starts both services.

  --uninstall  stop and remove the service and /opt/kneeroll;
               keep /etc/kneeroll and /var/lib/kneeroll
  --purge      with --uninstall: also remove configuration, data and the user
  --dry-run    print each command instead of running it
  --root DIR   prefix every installed path with DIR (also: KNEEROLL_ROOT=DIR).
               For tests and staging: commands such as systemctl still run as
               usual, so put stand-ins for them first on PATH.
  -h, --help   show this help
EOF
}

say() { printf 'kneeroll-install: %s\n' "$*"; }
warn() { printf 'kneeroll-install: warning: %s\n' "$*" >&2; }
die() {
    printf 'kneeroll-install: %s\n' "$1" >&2
    exit "${2:-1}"
}

# Every command that changes the system goes through run, so --dry-run can
# show it instead. Queries are run directly: they change nothing.
run() {
    if "$DRY_RUN"; then
        print_command "$@"
    else
        "$@"
    fi
}

# Shell-quoted only where needed, so the dry-run output reads like a script
# and can be pasted into one.
print_command() {
    local arg line="+"
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then
            line+=" $arg"
        else
            line+=" $(printf '%q' "$arg")"
        fi
    done
    printf '%s\n' "$line"
}

parse_args() {
    while (($# > 0)); do
        case "$1" in
            --uninstall) ACTION=uninstall ;;
            --purge) PURGE=true ;;
            --dry-run) DRY_RUN=true ;;
            --root)
                (($# >= 2)) || die "--root needs a directory" 2
                ROOT="$2"
                shift
                ;;
            --root=*) ROOT="${1#--root=}" ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown option '$1' (see --help)" 2 ;;
        esac
        shift
    done
    if "$PURGE" && [[ "$ACTION" != uninstall ]]; then
        die "--purge only goes with --uninstall" 2
    fi
    ROOT="${ROOT%/}"
}

set_paths() {
    VENV="$ROOT/opt/kneeroll"
    CONFIG_DIR="$ROOT/etc/kneeroll"
    CONFIG_FILE="$CONFIG_DIR/config.toml"
    STATE_DIR="$ROOT/var/lib/kneeroll"
    UNIT_DIR="$ROOT/etc/systemd/system"
    UNIT_FILE="$UNIT_DIR/$UNIT_NAME"
    WEB_UNIT_FILE="$UNIT_DIR/$WEB_UNIT_NAME"
    DOC_DIR="$VENV/share/doc/kneeroll"
}

require_root() {
    # A fake root (tests) or a dry run needs no privileges.
    if [[ -z "$ROOT" ]] && ! "$DRY_RUN" && ((EUID != 0)); then
        die "run as root: sudo $0"
    fi
}

require_source_tree() {
    [[ -f "$SOURCE_DIR/pyproject.toml" && -f "$SOURCE_DIR/kneeroll_device/default_config.toml" ]] ||
        die "run this script from the kneeroll source tree (no pyproject.toml in $SOURCE_DIR)"
}

# --- users and groups ------------------------------------------------------
# Under a fake root the account databases are its own files; on the real
# system they come from NSS, which also sees LDAP or systemd-userdb users.

user_exists() {
    if [[ -n "$ROOT" ]]; then
        grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null
    else
        getent passwd "$1" >/dev/null
    fi
}

group_exists() {
    if [[ -n "$ROOT" ]]; then
        grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null
    else
        getent group "$1" >/dev/null
    fi
}

ensure_device_groups() {
    local group
    for group in "${DEVICE_GROUPS[@]}"; do
        if ! group_exists "$group"; then
            # systemd refuses to start a unit whose SupplementaryGroups= names
            # an unknown group. Raspberry Pi OS has all three; elsewhere the
            # udev rules that hand devices to the group must be added by hand.
            warn "group '$group' is missing (not Raspberry Pi OS?); creating it"
            run groupadd --system "$group"
        fi
    done
}

ensure_service_user() {
    if user_exists "$SERVICE_USER"; then
        say "user $SERVICE_USER exists"
    else
        run useradd --system --user-group --no-create-home \
            --home-dir /var/lib/kneeroll --shell /usr/sbin/nologin \
            --comment "kneeroll sensor daemon" "$SERVICE_USER"
    fi
    local joined
    joined="$(
        IFS=,
        echo "${DEVICE_GROUPS[*]}"
    )"
    # -a appends: membership in other groups is left alone. Idempotent.
    run usermod --append --groups "$joined" "$SERVICE_USER"
}

add_owner_to_group() {
    # The person who ran `sudo install.sh` may read the service's log without sudo:
    # `kneeroll history` (show, plot, report, export) finds it in /var/lib/kneeroll.
    local owner="${SUDO_USER:-}"
    if [[ -n "$owner" && "$owner" != root ]] && user_exists "$owner"; then
        run usermod --append --groups "$SERVICE_USER" "$owner"
        say "$owner may now read the session log (log in again for the group to apply)"
    fi
}

ensure_web_user() {
    # The phone site's own user: in the daemon's group, so it reads the log,
    # and in no device group.
    if user_exists "$WEB_USER"; then
        say "user $WEB_USER exists"
    else
        run useradd --system --gid "$SERVICE_USER" --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin \
            --comment "kneeroll phone site" "$WEB_USER"
    fi
}

# --- system packages and interfaces ----------------------------------------

install_system_packages() {
    if ! command -v apt-get >/dev/null; then
        warn "no apt-get: install ${APT_PACKAGES[*]} (or their equivalents) yourself"
        return
    fi
    # Already installed packages make this a no-op.
    run apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}" ||
        die "apt-get install failed; run 'apt-get update' and try again"
}

enable_interfaces() {
    if ! command -v raspi-config >/dev/null; then
        warn "no raspi-config: enable I2C (dtparam=i2c_arm=on) and the UART (enable_uart=1)" \
            "in config.txt, and remove the serial console from cmdline.txt"
        return
    fi
    # 0 means "enable" in raspi-config's non-interactive mode, 1 "disable":
    # I2C on, the UART hardware on, the login console off the UART (the
    # Pico link needs the port to itself).
    run raspi-config nonint do_i2c 0
    run raspi-config nonint do_serial_hw 0
    run raspi-config nonint do_serial_cons 1
    if [[ ! -e "$ROOT/dev/i2c-1" ]]; then
        say "I2C was not active yet: reboot once the install is done"
    fi
}

# --- the program -----------------------------------------------------------

venv_sees_system_packages() {
    grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null
}

ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && venv_sees_system_packages; then
        say "virtual environment $VENV exists"
    elif [[ -e "$VENV" ]]; then
        # An old venv that cannot see python3-lgpio would fall back to a
        # pin factory that does not work: rebuild it.
        warn "$VENV cannot see Debian's packages; rebuilding it"
        run python3 -m venv --system-site-packages --clear "$VENV"
    else
        run python3 -m venv --system-site-packages "$VENV"
    fi
}

install_program() {
    # A regular (not editable) install: the service must not depend on the
    # source tree staying where it is.
    run "$VENV/bin/pip" install --no-cache-dir --upgrade --upgrade-strategy only-if-needed "$SOURCE_DIR"
}

install_docs() {
    # The unit's Documentation= points here: the wiring and the first-boot
    # checklist stay on the pod, readable without a network.
    local guide="$SOURCE_DIR/hardware/README.md"
    [[ -f "$guide" ]] || return 0
    run install -d -m 0755 "$DOC_DIR"
    run install -m 0644 "$guide" "$DOC_DIR/hardware.md"
}

install_config() {
    run install -d -m 0755 "$CONFIG_DIR"
    if [[ -e "$CONFIG_FILE" ]]; then
        say "keeping existing $CONFIG_FILE"
    else
        run install -m 0644 "$SOURCE_DIR/kneeroll_device/default_config.toml" "$CONFIG_FILE"
    fi
}

# --- the service -----------------------------------------------------------

service_is_active() {
    systemctl is-active --quiet "$UNIT_NAME" 2>/dev/null
}

install_unit() {
    # Always refreshed: local changes belong in a drop-in
    # (systemctl edit kneeroll), which this never touches.
    run install -d -m 0755 "$UNIT_DIR"
    run install -m 0644 "$SCRIPT_DIR/$UNIT_NAME" "$UNIT_FILE"
    run install -m 0644 "$SCRIPT_DIR/$WEB_UNIT_NAME" "$WEB_UNIT_FILE"
    run systemctl daemon-reload
}

start_service() {
    local was_running=false
    if service_is_active; then
        was_running=true
    fi
    run systemctl enable --now "$UNIT_NAME" "$WEB_UNIT_NAME"
    if "$was_running"; then
        # enable --now leaves a running service alone: restart it so the
        # upgraded code and unit take effect.
        run systemctl restart "$UNIT_NAME" "$WEB_UNIT_NAME"
    fi
}

do_install() {
    require_source_tree
    install_system_packages
    enable_interfaces
    ensure_device_groups
    ensure_service_user
    ensure_web_user
    add_owner_to_group
    ensure_venv
    install_program
    install_docs
    install_config
    install_unit
    start_service
    say "installed. Follow it with: journalctl -u kneeroll -f"
    say "the phone site: http://$(hostname).local:8080/ on the same network (web.port in the config)"
    say "check the hardware: sudo systemctl stop kneeroll &&" \
        "sudo -u kneeroll env LG_WD=/tmp /opt/kneeroll/bin/kneeroll doctor --config /etc/kneeroll/config.toml"
}

# --- removal ---------------------------------------------------------------

stop_and_disable() {
    # Tolerate a service that is already gone: uninstall is idempotent too.
    run systemctl disable --now "$UNIT_NAME" "$WEB_UNIT_NAME" ||
        warn "could not disable $UNIT_NAME and $WEB_UNIT_NAME (not installed?)"
}

remove_path() {
    local path="$1"
    if [[ -e "$path" || -L "$path" ]]; then
        run rm -rf -- "$path"
    fi
}

do_uninstall() {
    stop_and_disable
    remove_path "$UNIT_FILE"
    remove_path "$WEB_UNIT_FILE"
    run systemctl daemon-reload
    remove_path "${VENV:?}"
    if "$PURGE"; then
        remove_path "$UNIT_FILE.d"
        remove_path "$WEB_UNIT_FILE.d"
        remove_path "${CONFIG_DIR:?}"
        remove_path "${STATE_DIR:?}"
        if user_exists "$WEB_USER"; then
            run userdel "$WEB_USER"
        fi
        if user_exists "$SERVICE_USER"; then
            run userdel "$SERVICE_USER"
        fi
        say "removed kneeroll, its configuration, its data and its user"
    else
        say "removed kneeroll; kept $CONFIG_DIR and $STATE_DIR (--purge removes them)"
    fi
}

main() {
    parse_args "$@"
    set_paths
    require_root
    case "$ACTION" in
        install) do_install ;;
        uninstall) do_uninstall ;;
        *) die "unknown action $ACTION" 2 ;;
    esac
}

main "$@"
