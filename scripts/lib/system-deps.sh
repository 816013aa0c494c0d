# Sourced by the scripts in scripts/: makes sure the Debian/Ubuntu packages a step needs
# are installed, installing them when this user can (root, or password-less sudo), and
# otherwise stopping at once with the exact apt-get line to run.

# ensure_packages PKG...
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing system packages: ${missing[*]} (this is not a Debian/Ubuntu system: install their equivalents)" >&2
        exit 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "error: missing system packages: ${missing[*]}" >&2
            echo "       install them with: sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
    fi
    echo "installing system packages: ${missing[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
}

# ensure_rust: cargo must be on PATH (rustup's default install puts it in ~/.cargo/bin).
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
        exit 1
    fi
}

# What building Uchat needs beyond Rust: a C compiler and linker (ring's assembly, and
# rustc's linking step), pkg-config and the ALSA headers (cpal, for sound devices), and
# cmake (the opus crate builds its bundled libopus with it).
BUILD_PACKAGES=(gcc libc6-dev pkg-config libasound2-dev cmake)

# What running the desktop app needs on a bare system: OpenGL (Mesa) and the X11 and
# font libraries winit and eframe load.
DESKTOP_PACKAGES=(libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcursor1 libxi6 libfontconfig1)

# warn_if_low_disk MB WHAT: a build that runs out of disk fails deep in the linker (SIGBUS,
# "Bus error"), far from the cause; say so up front when the target directory's file
# system has less than MB megabytes free. Only a warning: the figure is a measured guess.
warn_if_low_disk() {
    local need_mb=$1 what=$2 dir="${CARGO_TARGET_DIR:-target}" free_mb
    mkdir -p "$dir"
    free_mb=$(df -Pm "$dir" | awk 'NR == 2 { print $4 }')
    if [ -n "$free_mb" ] && [ "$free_mb" -lt "$need_mb" ]; then
        echo "warning: $what takes about $need_mb MB in $dir, but only $free_mb MB are free there;" >&2
        echo "         if the link step dies with 'Bus error', free some disk or point CARGO_TARGET_DIR elsewhere" >&2
    fi
}
