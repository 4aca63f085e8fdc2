using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Cli;

/// <summary>Options, checks and helpers shared by the commands.</summary>
internal static class Common
{
    /// <summary>The Node uhura wire's name on the command line.</summary>
    public const string UhuraProtocol = "uhura";

    /// <summary>
    /// The backoff of <c>send</c> and <c>listen --reconnect</c>, run by the library: 100 ms doubling to 5 s, with jitter,
    /// no attempt limit (<c>send</c> is bounded by its <c>--timeout</c>, <c>listen</c> by a signal).
    /// </summary>
    public static ReconnectOptions Reconnect { get; } = ReconnectOptions.Default with
    {
        FirstDelay = TimeSpan.FromMilliseconds(100),
        MaxDelay = TimeSpan.FromSeconds(5),
    };

    /// <summary>How long one connection attempt (socket and handshake) may take before it counts as failed and is retried.</summary>
    public static TimeSpan AttemptTimeout { get; } = TimeSpan.FromSeconds(10);

    /// <summary><c>--verbose</c>: library logs (debug level) on stderr. Declared once on the root command, recursive.</summary>
    public static Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Write debug logs to stderr: the library's, the connection states of send and the node events of node.",
        Recursive = true,
    };

    /// <summary>The native protocol's name on the command line.</summary>
    public const string NativeProtocol = "native";

    /// <summary>The socket-ipc wire (npm <c>@crussell52/socket-ipc</c>) on the command line: Unix sockets only.</summary>
    public const string SocketIpcProtocol = "socket-ipc";

    /// <summary>For <c>serve</c>: accept both uhura wires (native and Node uhura) on the endpoint.</summary>
    public const string AutoProtocol = "auto";

    /// <summary>A <c>--protocol</c> option (each command has its own instance): <c>native</c> by default for clients, <c>auto</c> for <c>serve</c>.</summary>
    public static Option<string> ProtocolOption(bool server = false) => new("--protocol")
    {
        Description = server
            ? "The wire protocols to accept: auto (native and uhura, told apart by the first byte; the default), native, uhura (the Node uhura wire), or socket-ipc (the Node @crussell52/socket-ipc wire: unix:// only, never auto-detected)."
            : "The wire protocol: native (Rx.Uhura's own; the default), uhura (the Node uhura wire, to talk to Node uhura servers), or socket-ipc (the Node @crussell52/socket-ipc wire; unix:// only).",
        HelpName = "P",
        DefaultValueFactory = _ => server ? AutoProtocol : NativeProtocol,
    };

    /// <summary>The wire a client speaks; anything but native, uhura or socket-ipc is bad usage.</summary>
    public static WireProtocol ParseClientProtocol(string? protocol) => protocol switch
    {
        NativeProtocol => WireProtocol.Native,
        UhuraProtocol => WireProtocol.NodeUhura,
        SocketIpcProtocol => WireProtocol.SocketIpc,
        _ => throw new UsageException($"protocol '{protocol}' is not supported (supported: {NativeProtocol}, {UhuraProtocol}, {SocketIpcProtocol})."),
    };

    /// <summary>The wires a server accepts; anything but auto, native, uhura or socket-ipc is bad usage.</summary>
    public static ServerWires ParseServerProtocol(string? protocol) => protocol switch
    {
        AutoProtocol => new(AcceptNative: true, AcceptNodeUhura: true, Only: null),
        NativeProtocol => new(AcceptNative: true, AcceptNodeUhura: false, Only: null),
        UhuraProtocol => new(AcceptNative: false, AcceptNodeUhura: true, Only: null),

        // socket-ipc has no handshake, so the server must speak it alone (UhuraServerOptions.Protocol).
        SocketIpcProtocol => new(AcceptNative: true, AcceptNodeUhura: true, Only: WireProtocol.SocketIpc),
        _ => throw new UsageException($"protocol '{protocol}' is not supported (supported: {AutoProtocol}, {NativeProtocol}, {UhuraProtocol}, {SocketIpcProtocol})."),
    };

    /// <summary>The wires of <c>serve --protocol</c>: the uhura wires told apart by their first byte, or one wire alone.</summary>
    /// <param name="AcceptNative">Whether native clients are accepted (when <paramref name="Only"/> is null).</param>
    /// <param name="AcceptNodeUhura">Whether Node uhura clients are accepted (when <paramref name="Only"/> is null).</param>
    /// <param name="Only">The one wire spoken, for socket-ipc; null to detect the uhura wires.</param>
    internal sealed record ServerWires(bool AcceptNative, bool AcceptNodeUhura, WireProtocol? Only);

    /// <summary>A required endpoint URI option (<c>--listen</c>, <c>--connect</c>).</summary>
    public static Option<string> EndpointOption(string name, string description) => new(name)
    {
        Description = description + " tcp://HOST:PORT, tls://HOST:PORT (see --tls-*) or unix:///ABSOLUTE/PATH.",
        HelpName = "URI",
        Required = true,
    };

    /// <summary>Parses an endpoint URI for a wire; a bad one, or socket-ipc on anything but a Unix socket, is bad usage.</summary>
    public static EndPoint ParseEndpoint(string? uri, WireProtocol? wire)
    {
        EndPoint endPoint;
        try
        {
            endPoint = UhuraEndpoint.Parse(uri ?? string.Empty);
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }

        if (wire == WireProtocol.SocketIpc && endPoint is not UnixDomainSocketEndPoint)
        {
            throw new UsageException($"protocol {SocketIpcProtocol} runs over Unix sockets only: use unix:///ABSOLUTE/PATH, not '{uri}'.");
        }

        return endPoint;
    }

    /// <summary>Parses one ARG_JSON value (exactly one JSON value, no date conversion); malformed JSON is bad usage.</summary>
    public static JToken ParseJsonArgument(string text)
    {
        if (text.StartsWith("--", StringComparison.Ordinal))
        {
            throw new UsageException($"unrecognized option '{Shorten(text)}'.");
        }

        try
        {
            return ReadJson(text);
        }
        catch (JsonReaderException) when (text.StartsWith('-') && !(text.Length > 1 && char.IsAsciiDigit(text[1])))
        {
            throw new UsageException($"unrecognized option '{Shorten(text)}' (or an argument that is not valid JSON).");
        }
        catch (JsonReaderException ex)
        {
            throw new UsageException($"argument '{Shorten(text)}' is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>Reads exactly one JSON value (no date conversion); <see cref="JsonReaderException"/> when the text is not that.</summary>
    public static JToken ReadJson(string text)
    {
        using var reader = new JsonTextReader(new StringReader(text)) { DateParseHandling = DateParseHandling.None };
        var token = JToken.ReadFrom(reader);
        if (reader.Read())
        {
            throw new JsonReaderException("Additional text after the JSON value.");
        }

        return token;
    }

    /// <summary>Library logs go to stderr only: errors by default, everything with <c>--verbose</c>.</summary>
    public static ILoggerFactory CreateLoggerFactory(bool verbose) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Error)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        }));

    /// <summary>Names a disconnect reason in the JSON output: <c>remote-close</c>, <c>transport-error</c>, ...</summary>
    public static string Format(DisconnectReason reason) => reason switch
    {
        DisconnectReason.LocalClose => "local-close",
        DisconnectReason.RemoteClose => "remote-close",
        DisconnectReason.TransportError => "transport-error",
        DisconnectReason.ProtocolError => "protocol-error",
        DisconnectReason.SessionInvalidated => "session-invalidated",
        DisconnectReason.SlowConsumer => "slow-consumer",
        DisconnectReason.Unauthorized => "unauthorized",
        DisconnectReason.SessionInUse => "session-in-use",
        _ => reason.ToString().ToLowerInvariant(),
    };

    /// <summary>One line for stderr: the message of an exception and of its causes, without line breaks.</summary>
    public static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    /// <summary>The messages of an exception and its inner exceptions, joined.</summary>
    public static string Describe(Exception ex)
    {
        var parts = new List<string>();
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is AggregateException { InnerExceptions.Count: 1 } aggregate)
            {
                e = aggregate.InnerExceptions[0];
            }

            if (!parts.Any(p => p.Contains(e.Message, StringComparison.Ordinal)))
            {
                parts.Add(e.Message);
            }
        }

        return OneLine(string.Join(": ", parts));
    }

    /// <summary>Writes a one-line diagnostic to stderr.</summary>
    public static void Warn(string message) => Console.Error.WriteLine("uhura: " + OneLine(message));

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
