using System.CommandLine;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura listen --connect URI [--protocol P] [--reconnect] [EVENT ...]</c>: prints the peer's events (only the named
/// ones, if any) and the client's state changes as JSON lines, until SIGINT / SIGTERM (exit 0) or until the connection
/// is lost without <c>--reconnect</c> (exit 1).
/// </summary>
/// <remarks>
/// <c>--reconnect</c> is the library's reconnection (<see cref="Common.Reconnect"/>): one client for the whole run,
/// a lost link (or a failed attempt, the first connect included) retried with backoff, the session resumed.
/// socket-ipc has no session (<c>"resumed"</c> is always false); an event is its topic with the message as the one
/// argument.
/// </remarks>
internal static class ListenCommand
{
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
        var tls = new TlsFlags(TlsFlags.Role.Client);
        tls.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(connect),
            tls.Read(parse),
            parse.GetValue(protocol),
            parse.GetValue(reconnect),
            parse.GetValue(events) ?? [],
            parse.GetValue(Common.Verbose),
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? uri, Transport.TlsOptions? tls, string? protocol, bool reconnect, string[] eventNames, bool verbose, CancellationToken stop)
    {
        var wire = Common.ParseClientProtocol(protocol);
        var endPoint = Common.ParseEndpoint(uri, wire);
        if (eventNames.FirstOrDefault(n => n.StartsWith("--", StringComparison.Ordinal)) is { } unknown)
        {
            throw new UsageException($"unrecognized option '{unknown}'.");
        }

        var filter = eventNames.Length == 0 ? null : new HashSet<string>(eventNames, StringComparer.Ordinal);
        var output = JsonLines.Stdout;
        using var logging = Common.CreateLoggerFactory(verbose);
        var options = new UhuraClientOptions
        {
            Connection = ConnectionOptions.Default with { LoggerFactory = logging },
            ConnectTimeout = Common.AttemptTimeout,
            Reconnect = reconnect ? Common.Reconnect : null,
            Protocol = wire,
            Tls = tls,
        };

        var closed = new TaskCompletionSource<ConnectionState>(TaskCreationOptions.RunContinuationsAsynchronously);
        var wasConnected = false;

        // The client starts connecting as it is made, before State can be subscribed to: "connecting" is printed first
        // here, so it is there even when the first attempt already failed by then.
        output.Write(StateLine(new ConnectionState(ConnectionStatus.Connecting)));
        ConnectionStatus? last = ConnectionStatus.Connecting;
        using var client = UhuraClient.Connect(endPoint, options);
        using var events = client.Events.Subscribe(e =>
        {
            if (filter is null || filter.Contains(e.Name))
            {
                output.Event(e);
            }
        });
        void OnState(ConnectionState state)
        {
            // Notifications come one at a time. The replayed initial state and the attempt's own one are both
            // "connecting": print it once.
            var status = state.Status;
            if (!(status == ConnectionStatus.Connecting && last == ConnectionStatus.Connecting))
            {
                output.Write(StateLine(state));
            }

            last = status;
            if (status == ConnectionStatus.Connected)
            {
                Volatile.Write(ref wasConnected, true);
            }
            else if (status == ConnectionStatus.Closed)
            {
                closed.TrySetResult(state);
            }
        }

        using var states = client.State.Subscribe(OnState); // replays the current state, even after Closed

        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (stop.Register(() => stopped.TrySetResult()))
        {
            await Task.WhenAny(closed.Task, stopped.Task).ConfigureAwait(false);
        }

        if (stop.IsCancellationRequested)
        {
            await client.Disconnect().ConfigureAwait(false); // prints "closed"
            return Exit.Ok;
        }

        var end = await closed.Task.ConfigureAwait(false);
        logging.CreateLogger("uhura").LogDebug("The client closed: {State}", end);
        var why = end.Error is { } error ? Common.Describe(error) : "the connection was closed";
        throw new CliFailureException(Volatile.Read(ref wasConnected) ? $"connection to {uri} lost: {why}" : $"cannot connect to {uri}: {why}");
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
                line["reconnect"] = state.IsReconnect;
                break;
            case ConnectionStatus.Disconnected:
                line["reason"] = state.Disconnect is { } info ? Common.Format(info.Reason) : null;
                break;
            case ConnectionStatus.Reconnecting:
                line["attempt"] = state.Attempt;
                line["delay"] = (long)Math.Round(state.Delay.TotalMilliseconds);
                line["error"] = state.Error is { } error ? Common.Describe(error) : null;
                break;
            case ConnectionStatus.Closed when state.Error is not null:
                line["error"] = Common.Describe(state.Error);
                break;
        }

        return line;
    }
}
