using System.CommandLine;
using System.Net.Sockets;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura serve --listen URI [--protocol P] [--echo] [--store S] [--stats]</c>: accepts connections and reports them,
/// their events and the session changes their peers make (JSON lines, or the human rendering on a terminal), until
/// SIGINT / SIGTERM. <c>--stats</c> lets clients ask for the server's statistics (<c>uhura stats</c>).
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var listen = Common.EndpointOption("--listen", "Where to listen;");
        var protocol = Common.ProtocolOption(server: true);
        var echo = new Option<bool>("--echo")
        {
            Description = "Answer every application event with the same event name and arguments on the same connection (socket-ipc: the same topic and message).",
        };
        var store = new Option<string>("--store")
        {
            Description = SessionStoreSpec.Description,
            HelpName = "S",
            DefaultValueFactory = _ => SessionStoreSpec.Memory,
        };

        var stats = new Option<bool>("--stats")
        {
            Description = "Let clients ask for this server's statistics (connections, counters, queues): see 'uhura stats'.",
        };

        var command = new Command("serve", "Accept connections and print what happens on them (JSON lines when stdout is redirected).")
        {
            listen, protocol, echo, store, stats,
        };
        var tls = new TlsFlags(TlsFlags.Role.Server);
        tls.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(listen),
            tls.Read(parse),
            parse.GetValue(protocol),
            parse.GetValue(echo),
            parse.GetValue(store),
            parse.GetValue(stats),
            parse.GetValue(Common.Verbose),
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? uri, Transport.TlsOptions? tls, string? protocol, bool echo, string? store, bool stats, bool verbose, CancellationToken stop)
    {
        var wires = Common.ParseServerProtocol(protocol);
        var createStore = SessionStoreSpec.Parse(store);
        var endPoint = Common.ParseEndpoint(uri, wires.Only);
        TlsFlags.CheckListen(endPoint, tls);
        var output = JsonLines.Stdout;
        using var logging = Common.CreateLoggerFactory(verbose);
        var sessionStore = createStore(logging);
        await using var storeLifetime = sessionStore as IAsyncDisposable; // disposed after the server closed (declared first)
        await SessionStoreSpec.OpenAsync(sessionStore, stop).ConfigureAwait(false);
        var server = new UhuraServer(new UhuraServerOptions
        {
            SessionStore = sessionStore,
            Connection = ConnectionOptions.Default with { LoggerFactory = logging },
            AcceptNative = wires.AcceptNative,
            AcceptNodeUhura = wires.AcceptNodeUhura,
            Protocol = wires.Only,
            Tls = tls,
            ExposeStatistics = stats,
        });

        // "listening" is the first line: a connection accepted before it was written waits for it.
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscriptions = new CompositeDisposable
        {
            server.Connections.Subscribe(connection =>
            {
                listening.Task.Wait(CancellationToken.None);
                OnConnection(connection, echo, output);
            }),
            server.Errors.Subscribe(error => Common.Warn($"connection {error.ConnectionId}: {Common.Describe(error)}")),
        };

        try
        {
            try
            {
                await server.ListenAsync(endPoint, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return Exit.Ok;
            }
            catch (Exception ex) when (ex is SocketException or IOException or UnauthorizedAccessException)
            {
                throw new CliFailureException($"cannot listen on {uri}: {ex.Message}", ex);
            }

            output.Write("listening", ("endpoint", server.Uri));
            listening.TrySetResult();

            try
            {
                await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            return Exit.Ok;
        }
        finally
        {
            listening.TrySetResult();
            await server.CloseAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs on the connection's read loop before it reads on, so nothing it receives is missed. A socket-ipc connection's
    /// id is the client id (a UUID); it has no session (<c>"session":null,"resumed":false</c>), and each event is its topic
    /// with the message as the one argument (none when the frame had no message).
    /// </summary>
    private static void OnConnection(Connection connection, bool echo, JsonLines output)
    {
        output.Write(
            "connect",
            ("conn", connection.Id),
            ("session", connection.Session.Id),
            ("resumed", connection.Resumed));

        var sessionChanges = connection.Session.Changes
            .Where(change => change.Origin == SessionChangeOrigin.Remote)
            .Subscribe(change => output.Write(
                "session",
                ("conn", connection.Id),
                ("key", change.Key),
                ("value", change.Value?.DeepClone())));

        // Events completes after the last event received was delivered (Disconnected may fire before that), so the
        // disconnect line comes after every event line of the connection. Disconnected replays its one value.
        connection.Events.Subscribe(
            e =>
            {
                output.Event(e);
                if (echo)
                {
                    _ = EchoAsync(connection, e);
                }
            },
            _ => Ended(),
            Ended);

        void Ended() => connection.Disconnected.Take(1).Subscribe(info =>
        {
            sessionChanges.Dispose();
            output.Write(
                "disconnect",
                ("conn", connection.Id),
                ("reason", Common.Format(info.Reason)));
        });
    }

    private static async Task EchoAsync(Connection connection, UhuraEvent e)
    {
        try
        {
            await connection.Send(e.Name, [.. e.Args.Cast<object?>()]).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is UhuraException or ArgumentException)
        {
            // The connection went away before the echo was acknowledged: its disconnect line says so.
            if (connection.IsConnected)
            {
                Common.Warn($"connection {connection.Id}: echoing '{e.Name}' failed: {Common.Describe(ex)}");
            }
        }
    }
}
