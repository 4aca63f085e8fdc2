using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura listen --connect URI [--protocol P] [--reconnect] [EVENT ...]</c>: prints the peer's events (only the named
/// ones, if any) and the client's state changes as JSON lines, until SIGINT / SIGTERM (exit 0) or until the connection
/// is lost without <c>--reconnect</c> (exit 1).
/// </summary>
/// <remarks>
/// The library's client does not reconnect yet, so <c>--reconnect</c> is done here: each time the client closes, a new
/// one is made after a backoff (100 ms doubling to 5 s, with jitter). A new client starts a new session.
/// </remarks>
internal static class ListenCommand
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    public static Command Create()
    {
        var connect = Common.EndpointOption("--connect", "The server to listen to;");
        var protocol = Common.ProtocolOption();
        var reconnect = new Option<bool>("--reconnect")
        {
            Description = "When the connection is lost (or cannot be made), connect again with backoff instead of exiting 1.",
        };
        var events = new Argument<string[]>("EVENT")
        {
            Description = "Print only these events (default: every event).",
            Arity = ArgumentArity.ZeroOrMore,
        };

        var command = new Command("listen", "Connect and print the events the peer sends and the connection's state as JSON lines.")
        {
            connect, protocol, reconnect, events,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(connect),
            parse.GetValue(protocol),
            parse.GetValue(reconnect),
            parse.GetValue(events) ?? [],
            parse.GetValue(Common.Verbose),
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? uri, string? protocol, bool reconnect, string[] eventNames, bool verbose, CancellationToken stop)
    {
        Common.CheckProtocol(protocol);
        var endPoint = Common.ParseEndpoint(uri);
        if (eventNames.FirstOrDefault(n => n.StartsWith("--", StringComparison.Ordinal)) is { } unknown)
        {
            throw new UsageException($"unrecognized option '{unknown}'.");
        }

        var filter = eventNames.Length == 0 ? null : new HashSet<string>(eventNames, StringComparer.Ordinal);
        var output = JsonLines.Stdout;
        using var logging = Common.CreateLoggerFactory(verbose);
        var options = new UhuraClientOptions { Connection = ConnectionOptions.Default with { LoggerFactory = logging } };

        for (var attempt = 1; ; attempt++)
        {
            var (closed, wasConnected) = await RunClientAsync(endPoint, options, filter, reconnect, output, logging, stop).ConfigureAwait(false);
            if (closed is null)
            {
                return Exit.Ok; // stopped by a signal, closed gracefully
            }

            if (!reconnect)
            {
                var why = closed.Error is { } error ? Common.Describe(error) : "the connection was closed";
                throw new CliFailureException(wasConnected ? $"connection to {uri} lost: {why}" : $"cannot connect to {uri}: {why}");
            }

            if (wasConnected)
            {
                attempt = 1;
            }

            var delay = Backoff(attempt);
            output.Write(
                "state",
                ("state", "reconnecting"),
                ("attempt", attempt),
                ("delay", (long)delay.TotalMilliseconds),
                ("error", closed.Error is { } e ? Common.Describe(e) : null));
            try
            {
                await Task.Delay(delay, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                output.Write("state", ("state", "closed"));
                return Exit.Ok;
            }
        }
    }

    /// <summary>
    /// One client, from connecting to closed. Returns the closed state when it closed by itself (and whether it was
    /// connected at some point), or null when <paramref name="stop"/> closed it.
    /// </summary>
    private static async Task<(ConnectionState? Closed, bool WasConnected)> RunClientAsync(
        EndPoint endPoint, UhuraClientOptions options, HashSet<string>? filter, bool reconnect, JsonLines output, ILoggerFactory logging, CancellationToken stop)
    {
        var closed = new TaskCompletionSource<ConnectionState>(TaskCreationOptions.RunContinuationsAsynchronously);
        var wasConnected = false;
        var stopping = false;
        ConnectionStatus? last = null;

        var client = UhuraClient.Connect(endPoint, options);
        using var events = client.Events.Subscribe(e =>
        {
            if (filter is null || filter.Contains(e.Name))
            {
                output.Event(e);
            }
        });
        void OnState(ConnectionState state)
        {
            var status = state.Status;
            if (status == ConnectionStatus.Connected)
            {
                wasConnected = true;
            }

            // With --reconnect a client that closed by itself is replaced: that is not "closed" for good.
            var report = !(status == ConnectionStatus.Connecting && last == ConnectionStatus.Connecting)
                && !(status == ConnectionStatus.Closed && reconnect && !Volatile.Read(ref stopping));
            last = status;
            if (report)
            {
                output.Write(StateLine(state));
            }

            if (status == ConnectionStatus.Closed)
            {
                closed.TrySetResult(state);
            }
        }

        using var states = client.State.Subscribe(OnState); // replays the current state, even after Closed

        using (stop.Register(() => closed.TrySetResult(new ConnectionState(ConnectionStatus.Connecting))))
        {
            await closed.Task.ConfigureAwait(false);
        }

        if (stop.IsCancellationRequested && client.CurrentState.Status != ConnectionStatus.Closed)
        {
            Volatile.Write(ref stopping, true);
            await client.Disconnect().ConfigureAwait(false);
            return (null, wasConnected);
        }

        logging.CreateLogger("uhura").LogDebug("The client closed: {State}", client.CurrentState);
        return stop.IsCancellationRequested ? (null, wasConnected) : (client.CurrentState, wasConnected);
    }

    private static JObject StateLine(ConnectionState state)
    {
        var line = new JObject
        {
            ["type"] = "state",
            ["state"] = state.Status.ToString().ToLowerInvariant(),
        };
        switch (state.Status)
        {
            case ConnectionStatus.Connected:
                line["resumed"] = state.Resumed;
                break;
            case ConnectionStatus.Disconnected:
                line["reason"] = state.Disconnect is { } info ? Common.Format(info.Reason) : null;
                break;
            case ConnectionStatus.Closed when state.Error is not null:
                line["error"] = Common.Describe(state.Error);
                break;
        }

        return line;
    }

    private static TimeSpan Backoff(int attempt)
    {
        var exponential = FirstDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 16));
        var capped = Math.Min(exponential, MaxDelay.TotalMilliseconds);
        var jittered = capped * (0.8 + (0.4 * Random.Shared.NextDouble()));
        return TimeSpan.FromMilliseconds(jittered);
    }
}
