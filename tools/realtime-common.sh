# Sourced by the real-time tools (realtime-grid.sh, realtime-narrow-uplink.sh): the ports
# `rotorlink aircraft` and `rotorlink proxy` listen on, read from what they print on
# standard error once they are up (5 s at most; empty if they never say).

# wait_for_port FILE SED_SCRIPT: the first port SED_SCRIPT prints from FILE.
wait_for_port() {
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n "$2" "$1")
        [ -n "$port" ] && break
        sleep 0.05
    done
    echo "$port"
}

# aircraft_port STDERR_FILE
aircraft_port() {
    wait_for_port "$1" 's/^aircraft: listening on 127.0.0.1:\([0-9]*\)$/\1/p'
}

# proxy_port STDERR_FILE
proxy_port() {
    wait_for_port "$1" 's/^proxy: 127.0.0.1:\([0-9]*\) .*/\1/p'
}
