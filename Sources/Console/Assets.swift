/// The console's only static files: its style sheet and the small live-update script (served
/// from the console itself, so the Content-Security-Policy allows 'self' and nothing inline).
enum Assets {
    static let css = """
        :root { --ink: #1b1b1b; --paper: #fff; --line: #b1b4b6; --link: #1d4f91; --focus: #ffbf47;
          --critical: #8b0000; --high: #b3261e; --medium: #7a5300; --low: #0b5c73; --info: #505a5f; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--ink); background: var(--paper); }
        main { padding: 0 1rem 2rem; max-width: 80rem; margin: 0 auto; }
        h1 { font-size: 1.6rem; margin: 1rem 0; }
        h2 { font-size: 1.25rem; margin: 1.5rem 0 .5rem; }
        a { color: var(--link); }
        a:focus, button:focus, input:focus, select:focus, textarea:focus, main:focus-visible {
          outline: 3px solid var(--focus); outline-offset: 2px; box-shadow: 0 0 0 5px var(--ink); }
        .skip { position: absolute; left: -999px; }
        .skip:focus { left: 1rem; top: 1rem; background: var(--paper); padding: .5rem; z-index: 2; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
          white-space: nowrap; }
        header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center;
          justify-content: space-between; padding: .5rem 1rem; border-bottom: 2px solid var(--ink); }
        header.top ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
        header.top a[aria-current] { font-weight: bold; }
        .logout { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
        form.school { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin: 0; }
        form.school label { display: inline; } form.school select { width: auto; max-width: 100%; }
        p.school { margin: 0; }
        button { font: inherit; padding: .4rem .9rem; border: 2px solid var(--ink); background: #f3f2f1;
          cursor: pointer; min-height: 44px; }
        input, select, textarea { font: inherit; padding: .3rem; border: 2px solid var(--ink); max-width: 100%; }
        select { width: 100%; }
        textarea { width: 100%; min-height: 4rem; }
        label { display: block; font-weight: 600; }
        label.inline { display: inline; }
        .scroll { overflow-x: auto; max-width: 100%; }
        table { border-collapse: collapse; width: 100%; }
        caption { text-align: left; font-weight: 600; padding: .25rem 0; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        td.site, .site, dd { overflow-wrap: anywhere; }
        .sev { display: inline-block; padding: 0 .4rem; border-radius: 3px; color: #fff; font-weight: 600; }
        .sev-critical { background: var(--critical); } .sev-high { background: var(--high); }
        .sev-medium { background: var(--medium); } .sev-low { background: var(--low); }
        .sev-info, .sev-none { background: var(--info); }
        tr.row-critical { background: #fbe9e9; }
        tr.fresh { outline: 3px solid var(--focus); }
        .filters, .search { display: flex; flex-wrap: wrap; gap: 0 1rem; align-items: flex-end; }
        .filters p, .search p { margin: .25rem 0; }
        .actions { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(16rem, 100%), 1fr)); gap: 1rem; }
        fieldset { border: 1px solid var(--line); margin: 0; height: 100%; min-width: 0; }
        legend { font-weight: 600; }
        dl.record { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
        dl.record dt { font-weight: 600; }
        dl.record dd { margin: 0; }
        .error { border-left: 6px solid var(--high); padding: .5rem 1rem; background: #fdf0ef; }
        .done { border-left: 6px solid #00703c; padding: .5rem 1rem; background: #eef7f1; }
        .alert { background: var(--critical); color: #fff; padding: 1rem; font-size: 1.2rem; font-weight: 700; }
        .alert a { color: #fff; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(14rem, 100%), 1fr)); gap: 1rem; }
        .card { border: 1px solid var(--line); padding: .5rem 1rem; }
        .chart { width: 100%; height: auto; max-height: 16rem; }
        .chart .critical { fill: var(--critical); } .chart .high { fill: var(--high); }
        .chart .medium { fill: var(--medium); } .chart .low { fill: var(--low); } .chart text { font-size: 10px; }
        pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f3f2f1; padding: .5rem; }
        .login { max-width: 22rem; }
        @media (max-width: 40rem) {
          main { padding: 0 .5rem 2rem; }
          #incidents thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
          #incidents tr { display: block; border-bottom: 2px solid var(--line); padding: .25rem 0; }
          #incidents td { display: inline-block; border: 0; padding: .1rem .4rem; max-width: 100%; }
          dl.record { grid-template-columns: 1fr; }
          dl.record dd { margin-bottom: .5rem; }
        }

        """

    static let liveScript = """
        "use strict";
        // Live updates for the console: new incidents arrive from /events (server-sent events).
        // Rows are built with textContent only, never HTML, so nothing from the log is parsed.
        (function () {
          if (!window.EventSource) { return; }
          var source = new EventSource("/events");
          function cell(row, text) {
            var td = document.createElement("td");
            td.textContent = text;
            row.appendChild(td);
            return td;
          }
          source.addEventListener("incident", function (e) {
            var d;
            try { d = JSON.parse(e.data); } catch (x) { return; }
            var table = document.querySelector("table[data-live] tbody");
            if (table && !table.querySelector("tr[data-id='" + CSS.escape(d.id) + "']")) {
              var row = document.createElement("tr");
              row.dataset.id = d.id;
              row.className = "fresh row-" + d.severity;
              var t = document.createElement("time");
              t.dateTime = d.time;
              t.textContent = d.time.slice(0, 19).replace("T", " ");
              cell(row, "").appendChild(t);
              if (d.site !== undefined) { cell(row, d.site); }
              var badge = document.createElement("span");
              badge.className = "sev sev-" + d.severity;
              badge.textContent = d.severity;
              cell(row, "").appendChild(badge);
              cell(row, d.person); cell(row, d.group); cell(row, d.category);
              cell(row, d.host).className = "site"; cell(row, String(d.hits)); cell(row, d.state);
              var a = document.createElement("a");
              a.href = "/incidents/" + encodeURIComponent(d.id) +
                (d.site !== undefined ? "?site=" + encodeURIComponent(d.site) : "");
              a.textContent = "Open";
              cell(row, "").appendChild(a);
              table.insertBefore(row, table.firstChild);
              var empty = document.querySelector("p.empty"); if (empty) { empty.hidden = true; }
            }
            var live = document.getElementById("live");
            if (live) { live.textContent = "New " + d.severity + " incident: " + d.category + ", " + d.group + "."; }
            if (d.severity === "critical") {
              var alert = document.getElementById("alert");
              alert.textContent = "New CRITICAL incident: " + d.category + " (" +
                (d.site !== undefined ? d.site + ", " : "") + d.group + "). ";
              var link = document.createElement("a");
              link.href = "/incidents/" + encodeURIComponent(d.id) +
                (d.site !== undefined ? "?site=" + encodeURIComponent(d.site) : "");
              link.textContent = "Open it now";
              alert.appendChild(link);
              alert.hidden = false;
              document.title = "CRITICAL incident · esafety";
            }
          });
        })();

        """
}
