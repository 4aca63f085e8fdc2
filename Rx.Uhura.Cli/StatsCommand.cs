using System.CommandLine;
using System.Globalization;
using Newtonsoft.Json.Linq;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura stats --connect URI [--interval SECONDS] [--count K] [--timeout SECONDS]</c>: connects as a native client,
/// asks the server for its statistics (<see cref="UhuraClient.GetServerStatisticsAsync"/>; the server needs
/// <c>serve --stats</c>, <see cref="UhuraServerOptions.ExposeStatistics"/>) every interval, and shows its connections
/// with their rates (from the difference between two polls): a live table on a terminal, one <c>stats</c> JSON line per
/// poll otherwise. Runs until SIGINT / SIGTERM or <c>--count</c> polls (exit 0); a server that refuses, cannot be
/// reached or drops the link: exit 1.
/// </summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var connect = Common.EndpointOption("--connect", "The server to watch (native protocol; it must run with 'serve --stats');");
        var interval = new Option<double>("--interval")
        {
            Description = "Seconds between two polls.",
            HelpName = "SECONDS",
            DefaultValueFactory = _ => 1,
        };
        var count = new Option<int?>("--count")
        {
            Description = "Stop after K polls (default: until SIGINT / SIGTERM).",
            HelpName = "K",
        };
        var timeout = new Option<double>("--timeout")
        {
            Description = "Give up (exit 1) when connecting or one poll takes longer than this many seconds.",
            HelpName = "SECONDS",
            DefaultValueFactory = _ => 10,
        };

        var command = new Command("stats", "Watch a server's connections and their rates (the server runs 'uhura serve --stats'): a live table on a terminal, one JSON line per poll otherwise.")
        {
            connect, interval, count, timeout,
        };
        var tls = new TlsFlags(TlsFlags.Role.Client);
        tls.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(connect),
            tls.Read(parse),
            parse.GetValue(interval),
            parse.GetValue(count),
            parse.GetValue(timeout),
            parse.GetValue(Common.Verbose),
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? uri, Transport.TlsOptions? tls, double intervalSeconds, int? count, double timeoutSeconds, bool verbose, CancellationToken stop)
    {
        var endPoint = Common.ParseEndpoint(uri, WireProtocol.Native);
        var interval = Seconds("--interval", intervalSeconds);
        var timeout = Seconds("--timeout", timeoutSeconds);
        if (count is < 1)
        {
            throw new UsageException($"--count must be at least 1 (got {count}).");
        }

        var output = JsonLines.Stdout;
        using var logging = Common.CreateLoggerFactory(verbose);
        using var client = UhuraClient.Connect(endPoint, new UhuraClientOptions
        {
            Connection = ConnectionOptions.Default with { LoggerFactory = logging },
            ConnectTimeout = timeout,
            Protocol = WireProtocol.Native,
            Tls = tls,
        });

        var rates = new RateTracker();
        try
        {
            if (output.Console is { } console)
            {
                var view = new StatsView(uri ?? string.Empty);
                await console.Live(view.Render(null)).AutoClear(false).StartAsync(async live =>
                {
                    await PollAsync(client, interval, timeout, count, rates, snapshot =>
                    {
                        live.UpdateTarget(view.Render(snapshot));
                        live.Refresh();
                    }, stop).ConfigureAwait(false);
                }).ConfigureAwait(false);
            }
            else
            {
                await PollAsync(client, interval, timeout, count, rates, snapshot => output.Write(Line(snapshot)), stop).ConfigureAwait(false);
            }

            await client.Disconnect().ConfigureAwait(false);
            return Exit.Ok;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await client.Disconnect().ConfigureAwait(false);
            return Exit.Ok;
        }
        catch (StatisticsUnavailableException ex)
        {
            throw new CliFailureException($"statistics refused by {uri}: {ex.Message}");
        }
        catch (TimeoutException)
        {
            throw new CliFailureException($"no statistics from {uri} within {timeoutSeconds.ToString(CultureInfo.InvariantCulture)} s.");
        }
        catch (UhuraException ex)
        {
            throw new CliFailureException(client.CurrentState.Status == ConnectionStatus.Closed && ex is not ConnectionLostException
                ? $"cannot connect to {uri}: {Common.Describe(ex)}"
                : $"connection to {uri} lost: {Common.Describe(ex)}", ex);
        }
    }

    private static TimeSpan Seconds(string option, double seconds)
        => seconds > 0 && !double.IsInfinity(seconds) && seconds <= int.MaxValue / 1000
            ? TimeSpan.FromSeconds(seconds)
            : throw new UsageException($"{option} must be a positive number of seconds (got {seconds.ToString(CultureInfo.InvariantCulture)}).");

    private static async Task PollAsync(UhuraClient client, TimeSpan interval, TimeSpan timeout, int? count, RateTracker rates, Action<RatedSnapshot> show, CancellationToken stop)
    {
        for (var poll = 1; ; poll++)
        {
            var statistics = await client.GetServerStatisticsAsync(stop).WaitAsync(timeout, stop).ConfigureAwait(false);
            show(rates.Next(statistics));
            if (poll == count)
            {
                return;
            }

            await Task.Delay(interval, stop).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The <c>stats</c> JSON line: <c>{"type":"stats","timestamp":MS,"startedAt":MS,"uptime":SECONDS,"count":N,
    /// "totals":{...},"connections":[{"conn":ID,"remote":...,"protocol":"native","session":...,"connectedSince":MS,
    /// "eventsIn":...,"eventsOut":...,"bytesIn":...,"bytesOut":...,"pendingAcks":...,"queueDepth":...,
    /// "bufferedBytes":...,"eventsInPerSec":R,"eventsOutPerSec":R,"bytesInPerSec":R,"bytesOutPerSec":R}]}</c>; the rates
    /// are null on the first poll and for a connection new since the previous one.
    /// </summary>
    internal static JObject Line(RatedSnapshot snapshot)
    {
        var s = snapshot.Statistics;
        return JsonLines.Line(
            "stats",
            ("timestamp", s.Timestamp.ToUnixTimeMilliseconds()),
            ("startedAt", s.StartedAt.ToUnixTimeMilliseconds()),
            ("uptime", Math.Round(s.Uptime.TotalSeconds, 3)),
            ("count", s.ConnectionCount),
            ("totals", CountersJson(snapshot.Totals)),
            ("connections", new JArray(snapshot.Connections.Select(c =>
            {
                var line = new JObject
                {
                    ["conn"] = c.Statistics.Id,
                    ["remote"] = c.Statistics.RemoteEndPoint,
                    ["protocol"] = ProtocolName(c.Statistics.Protocol),
                    ["session"] = c.Statistics.SessionId,
                    ["connectedSince"] = c.Statistics.ConnectedSince.ToUnixTimeMilliseconds(),
                    ["pendingAcks"] = c.Statistics.PendingAcks,
                    ["queueDepth"] = c.Statistics.QueueDepth,
                    ["bufferedBytes"] = c.Statistics.BufferedBytes,
                };
                line.Merge(CountersJson(c.Counters));
                return line;
            }))));
    }

    private static JObject CountersJson(CounterSet c) => new()
    {
        ["eventsIn"] = c.EventsIn,
        ["eventsOut"] = c.EventsOut,
        ["bytesIn"] = c.BytesIn,
        ["bytesOut"] = c.BytesOut,
        ["eventsInPerSec"] = Rate(c.Rates?.EventsIn),
        ["eventsOutPerSec"] = Rate(c.Rates?.EventsOut),
        ["bytesInPerSec"] = Rate(c.Rates?.BytesIn),
        ["bytesOutPerSec"] = Rate(c.Rates?.BytesOut),
    };

    private static JToken Rate(double? value) => value is { } v ? new JValue(Math.Round(v, 1)) : JValue.CreateNull();

    /// <summary>The CLI's name of a wire (as <c>--protocol</c> takes it).</summary>
    internal static string? ProtocolName(WireProtocol? wire) => wire switch
    {
        WireProtocol.Native => Common.NativeProtocol,
        WireProtocol.NodeUhura => Common.UhuraProtocol,
        WireProtocol.SocketIpc => Common.SocketIpcProtocol,
        null => null,
        _ => wire.ToString()!.ToLowerInvariant(),
    };

    /// <summary>Events and bytes per second.</summary>
    internal sealed record Rates(double EventsIn, double EventsOut, double BytesIn, double BytesOut);

    /// <summary>Totals since the start, and the rates since the previous poll (null when there was none).</summary>
    internal sealed record CounterSet(long EventsIn, long EventsOut, long BytesIn, long BytesOut, Rates? Rates);

    /// <summary>One connection of a poll with its rates.</summary>
    internal sealed record RatedConnection(ConnectionStatistics Statistics, CounterSet Counters);

    /// <summary>A poll: the server's snapshot, every connection with its rates, and the totals over them.</summary>
    internal sealed record RatedSnapshot(ServerStatistics Statistics, IReadOnlyList<RatedConnection> Connections, CounterSet Totals);

    /// <summary>Computes the rates of each poll from the previous one, by connection id, over the server's own clock.</summary>
    internal sealed class RateTracker
    {
        private ServerStatistics? _previous;
        private Dictionary<string, ConnectionStatistics> _byId = new(StringComparer.Ordinal);

        public RatedSnapshot Next(ServerStatistics statistics)
        {
            var seconds = _previous is { } previous ? (statistics.Timestamp - previous.Timestamp).TotalSeconds : 0;
            var connections = statistics.Connections.Select(c =>
            {
                Rates? rates = null;
                if (seconds > 0 && _byId.TryGetValue(c.Id, out var before))
                {
                    rates = new Rates(
                        (c.EventsIn - before.EventsIn) / seconds,
                        (c.EventsOut - before.EventsOut) / seconds,
                        (c.BytesIn - before.BytesIn) / seconds,
                        (c.BytesOut - before.BytesOut) / seconds);
                }

                return new RatedConnection(c, new CounterSet(c.EventsIn, c.EventsOut, c.BytesIn, c.BytesOut, rates));
            }).ToArray();

            var rated = connections.Where(c => c.Counters.Rates is not null).Select(c => c.Counters.Rates!).ToArray();
            var totals = new CounterSet(
                connections.Sum(c => c.Counters.EventsIn),
                connections.Sum(c => c.Counters.EventsOut),
                connections.Sum(c => c.Counters.BytesIn),
                connections.Sum(c => c.Counters.BytesOut),
                _previous is null ? null : new Rates(rated.Sum(r => r.EventsIn), rated.Sum(r => r.EventsOut), rated.Sum(r => r.BytesIn), rated.Sum(r => r.BytesOut)));
            _previous = statistics;
            _byId = statistics.Connections.ToDictionary(c => c.Id, StringComparer.Ordinal);
            return new RatedSnapshot(statistics, connections, totals);
        }
    }

    /// <summary>The live table of a terminal.</summary>
    internal sealed class StatsView(string uri)
    {
        public IRenderable Render(RatedSnapshot? snapshot)
        {
            var table = new Table().Border(TableBorder.Rounded).Expand();
            table.AddColumns(
                new TableColumn("conn"),
                new TableColumn("remote"),
                new TableColumn("proto"),
                new TableColumn("session"),
                new TableColumn("up").RightAligned(),
                new TableColumn("ev in/s").RightAligned(),
                new TableColumn("ev out/s").RightAligned(),
                new TableColumn("in/s").RightAligned(),
                new TableColumn("out/s").RightAligned(),
                new TableColumn("events in/out").RightAligned(),
                new TableColumn("acks").RightAligned(),
                new TableColumn("queue").RightAligned());
            if (snapshot is null)
            {
                table.Title($"[bold]{Markup.Escape(uri)}[/] [grey]connecting...[/]");
                return table;
            }

            var s = snapshot.Statistics;
            table.Title($"[bold]{Markup.Escape(uri)}[/]  up [green]{Duration(s.Uptime)}[/]  [bold]{s.ConnectionCount}[/] connection{(s.ConnectionCount == 1 ? string.Empty : "s")}");
            foreach (var c in snapshot.Connections)
            {
                var st = c.Statistics;
                table.AddRow(
                    Markup.Escape(Short(st.Id)),
                    Markup.Escape(st.RemoteEndPoint ?? "-"),
                    Markup.Escape(ProtocolName(st.Protocol) ?? "-"),
                    Markup.Escape(st.SessionId is { } sid ? Short(sid) : "-"),
                    Duration(s.Timestamp - st.ConnectedSince),
                    Number(c.Counters.Rates?.EventsIn),
                    Number(c.Counters.Rates?.EventsOut),
                    Bytes(c.Counters.Rates?.BytesIn),
                    Bytes(c.Counters.Rates?.BytesOut),
                    $"{st.EventsIn.ToString("N0", CultureInfo.InvariantCulture)} / {st.EventsOut.ToString("N0", CultureInfo.InvariantCulture)}",
                    st.PendingAcks.ToString(CultureInfo.InvariantCulture),
                    st.QueueDepth.ToString(CultureInfo.InvariantCulture));
            }

            var t = snapshot.Totals;
            table.Caption($"total: [cyan]{Number(t.Rates?.EventsIn)}[/] ev/s in, [cyan]{Number(t.Rates?.EventsOut)}[/] ev/s out, {Bytes(t.Rates?.BytesIn)}/s in, {Bytes(t.Rates?.BytesOut)}/s out; "
                + $"{t.EventsIn.ToString("N0", CultureInfo.InvariantCulture)} events in, {t.EventsOut.ToString("N0", CultureInfo.InvariantCulture)} out");
            return table;
        }

        private static string Short(string id) => id.Length > 12 ? id[..8] + "…" : id;

        internal static string Number(double? value) => value is { } v ? v.ToString(v >= 100 ? "N0" : "0.#", CultureInfo.InvariantCulture) : "-";

        internal static string Bytes(double? value) => value switch
        {
            null => "-",
            >= 1024 * 1024 => (value.Value / (1024 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
            >= 1024 => (value.Value / 1024).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
            _ => value.Value.ToString("0", CultureInfo.InvariantCulture) + " B",
        };

        internal static string Duration(TimeSpan span) => span.TotalHours >= 1
            ? $"{(int)span.TotalHours}h{span.Minutes:00}m"
            : span.TotalMinutes >= 1 ? $"{span.Minutes}m{span.Seconds:00}s" : $"{span.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)}s";
    }
}
