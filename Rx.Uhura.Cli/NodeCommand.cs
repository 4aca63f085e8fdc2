using System.CommandLine;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using System.Text;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura node --id ID --listen URI [--connect URI ...] [--channel NAME] [--protocol P]</c>: a mesh node
/// (<see cref="UhuraNode"/>). It prints what happens to it as JSON lines and takes commands as JSON lines on stdin,
/// until SIGINT / SIGTERM.
/// </summary>
/// <remarks>
/// <para>
/// Output: <c>listening</c> first (<c>id</c>, <c>endpoint</c>: the node's info with the real port, what other nodes
/// connect to, <c>protocol</c>), then <c>peer-connect</c> (<c>peer</c>, <c>reconnect</c>) each time a link to a peer
/// becomes ready, reconnections included, <c>peer-disconnect</c> (<c>peer</c>, <c>error</c>: null when the link was
/// closed on purpose) each time such a link ends (so the two alternate for each peer), <c>message</c> (<c>from</c>,
/// <c>data</c>) for each packet sent to the node, <c>event</c> (<c>origin</c>, <c>event</c>, <c>args</c>) for each bus
/// event another node emitted.
/// </para>
/// <para>
/// Input, one JSON object per stdin line: <c>{"to":ID,"data":{...}}</c>, <c>{"to":[ID,...],"data":{...}}</c>,
/// <c>{"emit":NAME,"args":[...]}</c>, <c>{"connect":URI}</c>, <c>{"keep":ID,"value":BOOL}</c> (<c>value</c> defaults to
/// true). A line that cannot be carried out is reported on stderr (<c>uhura: stdin line N: ...</c>) and the node runs on;
/// blank lines are ignored. The end of stdin ends the commands, not the node: a node started in the background (stdin
/// <c>/dev/null</c>) runs until a signal.
/// </para>
/// <para>
/// Connections (<c>--connect</c> and <c>{"connect":URI}</c>) keep their peer: a lost link is reconnected with the
/// library's backoff (<see cref="UhuraNodeOptions.Reconnect"/>). A connection that cannot be made is reported on stderr
/// and not retried; the node runs on.
/// </para>
/// </remarks>
internal static class NodeCommand
{
    /// <summary>The masterless wire (npm <c>masterless@0.4.1</c>) on the command line: peers and packets, no event bus.</summary>
    public const string MasterlessProtocol = "masterless";

    public static Command Create()
    {
        var id = new Option<string>("--id")
        {
            Description = "The node's id, unique among the nodes it meets.",
            HelpName = "ID",
            Required = true,
        };
        var listen = Common.EndpointOption("--listen", "Where to listen (port 0: any free port; the listening line has the real one);");
        var connect = new Option<string[]>("--connect")
        {
            Description = "Another node to connect to (its listening endpoint), once listening; repeat for more. The peer is kept: reconnected when the link drops.",
            HelpName = "URI",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var channel = new Option<string?>("--channel")
        {
            Description = "native: the channel; nodes on another channel are refused (default DEFAULT_CHANNEL). The masterless wire has none.",
            HelpName = "NAME",
        };
        var protocol = new Option<string>("--protocol")
        {
            Description = "The mesh wire: native (Rx.Uhura's own, with the event bus; the default) or masterless (the Node masterless@0.4.1 wire: packets only, no emit).",
            HelpName = "P",
            DefaultValueFactory = _ => Common.NativeProtocol,
        };

        var command = new Command("node", "Run a mesh node: print its peers, the packets sent to it and the bus events as JSON lines; take commands as JSON lines on stdin (to/data, emit/args, connect, keep/value).")
        {
            id, listen, connect, channel, protocol,
        };
        var tls = new TlsFlags(TlsFlags.Role.Node);
        tls.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            new Settings(
                parse.GetValue(id),
                tls.Read(parse),
                parse.GetValue(listen),
                parse.GetValue(connect) ?? [],
                parse.GetValue(channel),
                parse.GetValue(protocol),
                parse.GetValue(Common.Verbose)),
            cancellationToken));
        return command;
    }

    private sealed record Settings(string? Id, Transport.TlsOptions? Tls, string? Listen, string[] Connect, string? Channel, string? Protocol, bool Verbose);

    private static async Task<int> RunAsync(Settings settings, CancellationToken stop)
    {
        var protocol = settings.Protocol switch
        {
            Common.NativeProtocol => MeshProtocol.Native,
            MasterlessProtocol => MeshProtocol.Masterless,
            _ => throw new UsageException($"protocol '{settings.Protocol}' is not supported by node (supported: {Common.NativeProtocol}, {MasterlessProtocol})."),
        };
        if (string.IsNullOrEmpty(settings.Id))
        {
            throw new UsageException("--id cannot be empty.");
        }

        if (settings.Channel is not null && protocol == MeshProtocol.Masterless)
        {
            throw new UsageException($"--channel is for --protocol {Common.NativeProtocol}: the masterless wire has no channel.");
        }

        if (settings.Channel is { Length: 0 })
        {
            throw new UsageException("--channel cannot be empty.");
        }

        TlsFlags.CheckListen(Common.ParseEndpoint(settings.Listen, wire: null), settings.Tls);
        foreach (var uri in settings.Connect)
        {
            Common.ParseEndpoint(uri, wire: null);
        }

        using var logging = Common.CreateLoggerFactory(settings.Verbose);
        var logger = logging.CreateLogger("uhura.node");
        var node = new UhuraNode(UhuraNodeOptions.Default with
        {
            NodeId = settings.Id,
            Protocol = protocol,
            Channel = settings.Channel ?? UhuraNodeOptions.Default.Channel,
            LoggerFactory = logging,
            Tls = settings.Tls,
        });

        var output = new HeldOutput(JsonLines.Stdout);
        var peers = new PeerLines(output);
        using var subscriptions = new CompositeDisposable
        {
            node.NodeEvents.Subscribe(e =>
            {
                logger.LogDebug("Node event: {Event}", e);
                peers.On(e);
            }),
            node.Messages.Subscribe(m => output.Write(JsonLines.Line(
                "message",
                ("from", m.SenderId),
                ("data", m.Packet.DeepClone())))),
            node.Events.Subscribe(e => output.Write(JsonLines.Line(
                "event",
                ("origin", e.OriginId),
                ("event", e.Name),
                ("args", e.Args.DeepClone())))),
        };

        try
        {
            string info;
            try
            {
                info = await node.ListenAsync(settings.Listen!, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return Exit.Ok;
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or UnauthorizedAccessException)
            {
                throw new CliFailureException($"cannot listen on {settings.Listen}: {ex.Message}", ex);
            }

            output.Open(JsonLines.Line("listening", ("id", node.Id), ("endpoint", info), ("protocol", settings.Protocol)));

            foreach (var uri in settings.Connect)
            {
                _ = ConnectAsync(node, uri, $"cannot connect to {uri}", stop);
            }

            // Not awaited: a read of stdin cannot be interrupted, and the node's life does not depend on it.
            _ = Task.Run(() => ReadCommandsAsync(node, settings.Protocol!, logger, stop), CancellationToken.None);

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
            output.Open(null);
            await node.CloseAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Connects (keeping the peer) and reports a failure on stderr; the peer-connect line comes from the node's events.</summary>
    private static async Task ConnectAsync(UhuraNode node, string uri, string failure, CancellationToken stop)
    {
        try
        {
            await node.ConnectAsync(uri, keep: true, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            Common.Warn($"{failure}: {Common.Describe(ex)}");
        }
    }

    /// <summary>Carries out stdin's commands, one JSON object per line, until stdin ends or the node stops.</summary>
    private static async Task ReadCommandsAsync(UhuraNode node, string protocolName, ILogger logger, CancellationToken stop)
    {
        using var input = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
        var number = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var line = await input.ReadLineAsync(stop).ConfigureAwait(false);
                if (line is null)
                {
                    logger.LogDebug("stdin ended: no more commands; the node runs until SIGINT / SIGTERM");
                    return;
                }

                number++;
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                try
                {
                    Execute(node, protocolName, line, number, stop);
                }
                catch (CommandException ex)
                {
                    Common.Warn($"stdin line {number}: {ex.Message}");
                }
                catch (ObjectDisposedException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (IOException ex)
        {
            Common.Warn($"stdin cannot be read: {Common.Describe(ex)}; no more commands");
        }
    }

    /// <summary>Carries out one stdin line; <see cref="CommandException"/> says why it could not be.</summary>
    private static void Execute(UhuraNode node, string protocolName, string line, int number, CancellationToken stop)
    {
        var command = ParseObject(line);
        var verbs = new[] { "to", "emit", "connect", "keep" }.Where(command.ContainsKey).ToArray();
        switch (verbs)
        {
            case ["to"]:
                SendPacket(node, command);
                break;
            case ["emit"]:
                if (node.Protocol != MeshProtocol.Native)
                {
                    throw new CommandException($"emit needs the event bus, which the {protocolName} wire does not have (run the node with --protocol {Common.NativeProtocol}).");
                }

                var name = command["emit"] is { Type: JTokenType.String } e ? (string)e! : throw new CommandException("\"emit\" must be the event name, a string.");
                var args = command["args"] switch
                {
                    null => [],
                    JArray array => array,
                    _ => throw new CommandException("\"args\" must be an array."),
                };
                node.Emit(name, [.. args.Select(a => (object?)a)]);
                break;
            case ["connect"]:
                var uri = command["connect"] is { Type: JTokenType.String } c ? (string)c! : throw new CommandException("\"connect\" must be a URI, a string.");
                try
                {
                    UhuraEndpoint.Parse(uri);
                }
                catch (FormatException ex)
                {
                    throw new CommandException(ex.Message);
                }

                _ = ConnectAsync(node, uri, $"stdin line {number}: cannot connect to {uri}", stop);
                break;
            case ["keep"]:
                var id = command["keep"] is { Type: JTokenType.String } k ? (string)k! : throw new CommandException("\"keep\" must be a node id, a string.");
                var value = command["value"] switch
                {
                    null => true,
                    { Type: JTokenType.Boolean } v => (bool)v,
                    _ => throw new CommandException("\"value\" must be true or false."),
                };
                node.Keep(id, value);
                break;
            case []:
                throw new CommandException("not a command: expected one of \"to\", \"emit\", \"connect\", \"keep\".");
            default:
                throw new CommandException($"one command per line, not {string.Join(" and ", verbs.Select(v => $"\"{v}\""))}.");
        }
    }

    private static void SendPacket(UhuraNode node, JObject command)
    {
        if (command["data"] is not JObject data)
        {
            throw new CommandException("\"data\" must be a JSON object (the packet).");
        }

        switch (command["to"])
        {
            case { Type: JTokenType.String } to:
                var id = (string)to!;
                if (!node.Send(id, data))
                {
                    throw new CommandException($"nothing sent: '{id}' is not a peer (or too many packets wait for it).");
                }

                break;
            case JArray ids when ids.All(i => i.Type == JTokenType.String):
                var reached = node.Send(ids.Select(i => (string)i!), data);
                if (reached < ids.Count)
                {
                    throw new CommandException($"sent to {reached} of {ids.Count} ids: the others are not peers (or too many packets wait for them).");
                }

                break;
            default:
                throw new CommandException("\"to\" must be a node id or an array of node ids.");
        }
    }

    /// <summary>Exactly one JSON object (no date conversion).</summary>
    private static JObject ParseObject(string line)
    {
        try
        {
            var token = Common.ReadJson(line);
            return token as JObject ?? throw new CommandException($"expected a JSON object, not {token.Type.ToString().ToLowerInvariant()}.");
        }
        catch (JsonReaderException ex)
        {
            throw new CommandException($"not valid JSON: {ex.Message}");
        }
    }

    /// <summary>A stdin line that cannot be carried out: reported, and the node runs on.</summary>
    private sealed class CommandException(string message) : Exception(message);

    /// <summary>
    /// Holds the lines that come before <c>listening</c> (a peer could connect between the bind and that line) and
    /// writes them after it, in order, without blocking the socket threads that report them.
    /// </summary>
    private sealed class HeldOutput(JsonLines output)
    {
        private readonly Lock _gate = new();
        private List<JObject>? _held = [];

        public void Write(JObject line)
        {
            lock (_gate)
            {
                if (_held is not null)
                {
                    _held.Add(line);
                    return;
                }
            }

            output.Write(line);
        }

        /// <summary>Writes <paramref name="first"/>, then the held lines; later lines go straight out. Idempotent.</summary>
        public void Open(JObject? first)
        {
            lock (_gate)
            {
                if (_held is null)
                {
                    return;
                }

                if (first is not null)
                {
                    output.Write(first);
                }

                foreach (var line in _held)
                {
                    output.Write(line);
                }

                _held = null;
            }
        }
    }

    /// <summary>
    /// The peer-connect / peer-disconnect lines: one peer-connect each time a link to a peer is ready (the node's
    /// <see cref="NodeEventKind.Initialized"/>), one peer-disconnect when that link ends (<see cref="NodeEventKind.Disconnect"/>),
    /// so the two alternate for each peer.
    /// </summary>
    private sealed class PeerLines(HeldOutput output)
    {
        private readonly Lock _gate = new();
        private readonly HashSet<string> _up = new(StringComparer.Ordinal);

        public void On(NodeEvent e)
        {
            if (e.PeerId is not { } peer)
            {
                return;
            }

            lock (_gate)
            {
                if (e.Kind == NodeEventKind.Initialized && _up.Add(peer))
                {
                    output.Write(JsonLines.Line("peer-connect", ("peer", peer), ("reconnect", e.IsReconnect)));
                }
                else if (e.Kind == NodeEventKind.Disconnect && _up.Remove(peer))
                {
                    output.Write(JsonLines.Line("peer-disconnect", ("peer", peer), ("error", e.Error is { } error ? Common.Describe(error) : null)));
                }
            }
        }
    }
}
