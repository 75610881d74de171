# NixOS module for snapguard.
#
#   imports = [ ./snapguard/nix/module.nix ];
#   services.snapguard = {
#     enable = true;
#     package = pkgs.callPackage ./snapguard-package.nix { };   # a buildNpmPackage of this repository
#     settings = {
#       contextDir = "/root/.claude/context";
#       volumes.containers = { backend = "btrfs"; path = "/mnt/pool/subvol7-containers"; tier = "critical"; };
#     };
#     orchestrate.calendar = "*-*-* 02:30:00";
#   };
#
# settings is rendered to /etc/snapguard/snapguard.yaml (the config's last search place, so the CLI
# finds it without --config). The timers run the same verbs as `snapguard units`.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.snapguard;
  yaml = pkgs.formats.yaml { };
  configFile = yaml.generate "snapguard.yaml" cfg.settings;
  snapguard = args: lib.escapeShellArgs ([ "${cfg.package}/bin/snapguard" ] ++ args ++ [ "--config" "/etc/snapguard/snapguard.yaml" ]);

  # One oneshot service per verb, optionally started by a timer.
  job = { description, args, calendar, randomizedDelay ? "0" }: {
    inherit calendar;
    service = {
      inherit description;
      after = [ "local-fs.target" ];
      path = cfg.extraPackages;
      serviceConfig = {
        Type = "oneshot";
        ExecStart = snapguard args;
        StateDirectory = "snapguard";
        Nice = 10;
        IOSchedulingClass = "idle";
      };
    };
    timer = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = calendar;
        Persistent = true;
        RandomizedDelaySec = randomizedDelay;
      };
    };
  };

  jobs = {
    snapguard-snapshot = job {
      description = "snapguard: scheduled snapshots of every volume";
      args = [ "snapshot" "create" ] ++ lib.attrNames (cfg.settings.volumes or { }) ++ [ "--type" "scheduled" ];
      calendar = cfg.snapshot.calendar;
    };
    snapguard-health = job {
      description = "snapguard: health check and metrics";
      args = [ "health" ];
      calendar = cfg.health.calendar;
    };
    snapguard-restore-test = job {
      description = "snapguard: restore test of the newest snapshots";
      args = [ "restore-test" "--spread" ];
      calendar = cfg.restoreTest.calendar;
      randomizedDelay = "6h";
    };
    snapguard-orchestrate = job {
      description = "snapguard: orchestrate all backup systems of this host";
      args = [ "orchestrate" ];
      calendar = cfg.orchestrate.calendar;
    };
  };

  calendarOption = default: what: lib.mkOption {
    type = lib.types.nullOr lib.types.str;
    inherit default;
    example = "*-*-* 03:00:00";
    description = "systemd OnCalendar expression for ${what}; null leaves the service without a timer (start it by hand or from another unit).";
  };
in
{
  options.services.snapguard = {
    enable = lib.mkEnableOption "snapguard, snapshots before every risky change";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The snapguard package (its bin/snapguard is used by every unit).";
    };

    settings = lib.mkOption {
      type = yaml.type;
      default = { };
      description = "The contents of snapguard.yaml (see docs/configuration.md); rendered to /etc/snapguard/snapguard.yaml.";
    };

    extraPackages = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = with pkgs; [ btrfs-progs util-linux coreutils systemd ];
      defaultText = lib.literalExpression "with pkgs; [ btrfs-progs util-linux coreutils systemd ]";
      description = "Commands snapguard runs (btrfs, zfs, restic, pgbackrest, ...), put on the units' PATH.";
    };

    snapshot.calendar = calendarOption null "scheduled snapshots of every configured volume";
    health.calendar = calendarOption "hourly" "the health check (also writes the metrics textfile)";
    restoreTest.calendar = calendarOption "monthly" "the restore test";
    orchestrate.calendar = calendarOption null "the backup orchestrator (a oneshot service: snapguard-orchestrate.service)";

    authorizedControllerKeys = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3Nza... snapguard@controller" ];
      description = "Public keys of controlling snapguards (docs/fleet.md). Each is added to root's authorized_keys with a forced command that runs only `snapguard mcp --config /etc/snapguard/snapguard.yaml`, and `restrict`.";
    };

    mcp = {
      enable = lib.mkEnableOption "the snapguard MCP server over Streamable HTTP";
      listen = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1:8765";
        description = "HOST:PORT to listen on (endpoint /mcp).";
      };
      tokenFile = lib.mkOption {
        type = lib.types.nullOr lib.types.path;
        default = null;
        description = "File with the bearer token clients must send. Required unless listen is a loopback address and noAuth is set.";
      };
      noAuth = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Serve without a token; snapguard refuses this on a non-loopback address.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !cfg.mcp.enable || cfg.mcp.tokenFile != null || cfg.mcp.noAuth;
        message = "services.snapguard.mcp needs tokenFile (or noAuth on a loopback address).";
      }
    ];

    environment.systemPackages = [ cfg.package ];

    # The same line as `snapguard authorize-key`: this key runs snapguard mcp and nothing else.
    users.users.root.openssh.authorizedKeys.keys = map
      (key: ''command="${cfg.package}/bin/snapguard mcp --config /etc/snapguard/snapguard.yaml",restrict ${key}'')
      cfg.authorizedControllerKeys;
    environment.etc."snapguard/snapguard.yaml".source = configFile;

    systemd.services = lib.mapAttrs (_: j: j.service) jobs // lib.optionalAttrs cfg.mcp.enable {
      snapguard-mcp = {
        description = "snapguard MCP server (Streamable HTTP)";
        wantedBy = [ "multi-user.target" ];
        after = [ "network.target" ];
        path = cfg.extraPackages;
        serviceConfig = {
          ExecStart = snapguard ([ "mcp" "--http" cfg.mcp.listen ]
            ++ lib.optionals (cfg.mcp.tokenFile != null) [ "--token-file" "%d/token" ]
            ++ lib.optionals (cfg.mcp.tokenFile == null && cfg.mcp.noAuth) [ "--no-auth" ]);
          LoadCredential = lib.optionals (cfg.mcp.tokenFile != null) [ "token:${toString cfg.mcp.tokenFile}" ];
          StateDirectory = "snapguard";
          Restart = "on-failure";
          KillSignal = "SIGTERM";
          TimeoutStopSec = 15;
        };
      };
    };

    systemd.timers = lib.mapAttrs (_: j: j.timer) (lib.filterAttrs (_: j: j.calendar != null) jobs);
  };
}
