# bash completion for kiln: subcommands, each command's flags, the values of flags that take
# a fixed set, file names where a path goes, and for kiln ctl the VMs' names and commands. Installed as
# share/bash-completion/completions/kiln; tests/integration/test_bash_completion.sh checks that
# every flag `kiln run --help` and `kiln test --help` print is offered here.

_kiln_run_flags="--kernel --initrd --cmdline --cpus --cpu-template --memory --cpu-quota --cpu-weight
    --nice --disk --net --rng --rng-limit --balloon
    --device-discovery --vmgenid --console --vconsole --log-level --on-reset --shutdown-grace
    --host-compat --seccomp --name --jail --uid --gid --api-socket --expect --timeout --help"
_kiln_test_flags="--junit --tap --jobs --logs --filter --help"
_kiln_ctl_flags="--json --stop --diff --downtime-ms --timeout-s --bandwidth --psk-file --auto-converge --help"
_kiln_ctl_commands="status pause resume shutdown reboot counters snapshot migrate migrate-cancel balloon"
_kiln_restore_flags="--paused --clone --memory-restore --api-socket --net --console --vconsole --name
    --log-level --seccomp --shutdown-grace --on-reset --help"
_kiln_receive_flags="--listen --psk-file --timeout-s --api-socket --net --console --vconsole --name
    --log-level --seccomp --shutdown-grace --on-reset --help"
_kiln_ps_flags="--json --help"

# _kiln_vm_names: the names of the VMs with a socket (NAME.PID.sock) in the run folder.
_kiln_vm_names()
{
    local dir=/tmp/kiln-$EUID socket
    [ -n "${XDG_RUNTIME_DIR:-}" ] && dir=$XDG_RUNTIME_DIR/kiln
    for socket in "$dir"/*.sock; do
        [ -S "$socket" ] || continue
        socket=${socket##*/}
        socket=${socket%.sock}
        printf '%s\n' "${socket%.*}"
    done
}

# _kiln_files [-d]: file (or with -d, folder) names matching $cur, shown as paths.
_kiln_files()
{
    compopt -o filenames 2>/dev/null
    if [ "${1:-}" = -d ]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

_kiln_words()
{
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

# The value of FLAG (cur is what is typed of it): 0 if FLAG takes a value and it was completed.
_kiln_value()
{
    case "$1" in
    --kernel | --initrd | --disk | --junit | --api-socket | --psk-file) _kiln_files ;;
    --logs | --jail) _kiln_files -d ;;
    --cpu-template)
        _kiln_files
        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "host minimal" -- "$cur")
        ;;
    --console | --vconsole)
        if [[ $cur == file:* || $cur == socket:* || $cur == virtio:file:* || $cur == virtio:socket:* ]]; then
            local cur=${cur##*:}
            _kiln_files
        else
            _kiln_words "stdio file: socket: pty none virtio virtio:stdio virtio:file: virtio:socket: virtio:pty virtio:none"
            compopt -o nospace 2>/dev/null
        fi
        ;;
    --log-level) _kiln_words "error warn info debug" ;;
    --device-discovery) _kiln_words "acpi cmdline" ;;
    --vmgenid) _kiln_words "on off" ;;
    --on-reset) _kiln_words "exit restart" ;;
    --host-compat) _kiln_words "auto on off" ;;
    --seccomp) _kiln_words "off log kill" ;;
    --memory-restore) _kiln_words "lazy copy" ;;
    --cmdline | --cpus | --memory | --cpu-quota | --cpu-weight | --nice | --net | --shutdown-grace | \
        --name | --expect | --timeout | --uid | --gid | --jobs | --filter | --downtime-ms | --timeout-s | --bandwidth) COMPREPLY=() ;;
    --balloon)
        # SIZE first, then its options.
        if [[ $cur == *,* ]]; then
            local size=${cur%,*}
            mapfile -t COMPREPLY < <(compgen -P "$size," -W "deflate-on-oom=on stats= free-page-reporting=on" -- "${cur##*,}")
            compopt -o nospace 2>/dev/null
        else
            COMPREPLY=()
        fi
        ;;
    --listen)
        _kiln_words "unix: tcp:"
        compopt -o nospace 2>/dev/null
        ;;
    *) return 1 ;;
    esac
    return 0
}

_kiln()
{
    # bash splits "file:boot.log" at ':' and "--flag=value" at '='; join the ':' parts again
    # so each value is one word (the reply then leaves out what bash keeps before the ':').
    local words=() i word
    for ((i = 1; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [ ${#words[@]} -gt 0 ] && { [ "$word" = : ] || [ "${COMP_WORDS[i - 1]}" = : ]; }; then
            words[-1]+=$word
        else
            words+=("$word")
        fi
    done
    local count=${#words[@]} cur=${words[-1]} prev=""
    [ "$count" -gt 1 ] && prev=${words[-2]}
    COMPREPLY=()
    if [ "$count" -eq 1 ]; then
        _kiln_words "run validate config test ctl ps restore receive snapshot help version --help --version"
        return 0
    fi
    _kiln_complete "$count" "${words[0]}" "$prev"
    # What bash already has before the last ':' of the word is not to be offered again.
    local kept=${cur%"${cur##*:}"}
    if [ -n "$kept" ]; then
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${COMPREPLY[i]#"$kept"}
        done
    fi
    return 0
}

# _kiln_complete COUNT COMMAND PREV: COMPREPLY for word COUNT after kiln (cur set by _kiln).
_kiln_complete()
{
    local count=$1 command=$2 prev=$3
    # --flag=value: bash splits it into --flag, =, value.
    if [ "$prev" = = ] && [ "$count" -gt 2 ]; then
        _kiln_value "${words[count - 3]}" && return 0
    elif [ "$cur" = = ]; then
        cur=""
        _kiln_value "$prev" && return 0
    fi
    case "$command" in
    run | validate | config)
        _kiln_value "$prev" && return 0
        if [[ $cur == -* ]]; then
            _kiln_words "$_kiln_run_flags"
        else
            _kiln_files # the VM definition file
        fi
        ;;
    test)
        _kiln_value "$prev" && return 0
        if [[ $cur == -* ]]; then
            _kiln_words "$_kiln_test_flags"
        else
            _kiln_files # test files
        fi
        ;;
    ctl)
        if [ "$prev" = --diff ]; then
            _kiln_files -d # the base snapshot's folder
            return 0
        fi
        case "$prev" in
        --psk-file | --downtime-ms | --timeout-s | --bandwidth)
            _kiln_value "$prev"
            return 0
            ;;
        esac
        if [[ $cur == -* ]]; then
            _kiln_words "$_kiln_ctl_flags"
            return 0
        fi
        # Which positional word this is: SOCKET first, then COMMAND.
        local i positional=0 command=""
        for ((i = 1; i < count - 1; i++)); do
            case "${words[i - 1]}" in # a flag's value
            --diff | --psk-file | --downtime-ms | --timeout-s | --bandwidth) continue ;;
            esac
            [[ ${words[i]} == -* ]] && continue
            positional=$((positional + 1))
            [ "$positional" -eq 2 ] && command=${words[i]}
        done
        if [ "$positional" -eq 0 ]; then
            _kiln_files # a socket's path ...
            local names
            names=$(_kiln_vm_names)
            # ... or a VM's name
            [ -n "$names" ] && mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$names" -- "$cur")
        elif [ "$positional" -eq 1 ]; then
            _kiln_words "$_kiln_ctl_commands"
        elif [ "$positional" -eq 2 ] && [ "$command" = snapshot ]; then
            _kiln_files -d # the snapshot's folder
        elif [ "$positional" -eq 2 ] && [ "$command" = migrate ]; then
            _kiln_words "unix: tcp:" # the receiver's address
            compopt -o nospace 2>/dev/null
        fi
        ;;
    restore)
        _kiln_value "$prev" && return 0
        if [[ $cur == -* ]]; then
            _kiln_words "$_kiln_restore_flags"
        else
            _kiln_files -d # the snapshot's folder
        fi
        ;;
    receive)
        _kiln_value "$prev" && return 0
        [[ $cur == -* ]] && _kiln_words "$_kiln_receive_flags"
        ;;
    ps) [[ $cur == -* ]] && _kiln_words "$_kiln_ps_flags" ;;
    snapshot)
        if [[ $cur == -* ]]; then
            _kiln_words "--help"
        elif [ "$count" -eq 2 ]; then
            _kiln_words "merge"
        elif [ "$count" -eq 3 ]; then
            _kiln_files -d # the diff's folder
        fi
        ;;
    help) [ "$count" -eq 2 ] && _kiln_words "run test ctl ps restore receive snapshot" ;;
    esac
    return 0
}
complete -F _kiln kiln
