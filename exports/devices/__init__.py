"""Device files: whole files that firewalls, resolvers, IDS and hosts load as they are (plain
and EDL lists, FortiGate feeds, hosts, RPZ, ipset, nginx, Suricata, Zeek), one renderer module
per family, loaded by ``render`` from the table in ``worker.contract.device_files``."""
