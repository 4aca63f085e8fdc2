using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Cli;

/// <summary>Options, checks and helpers shared by the commands.</summary>
internal static class Common
{
    /// <summary>The protocols this build speaks.</summary>
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
        Description = "Write the library's debug logs to stderr.",
        Recursive = true,
    };

    /// <summary>The native protocol's name on the command line.</summary>
    public const string NativeProtocol = "native";

    /// <summary>For <c>serve</c>: accept both wires on the endpoint.</summary>
    public const string AutoProtocol = "auto";

    /// <summary>A <c>--protocol</c> option (each command has its own instance): <c>native</c> by default for clients, <c>auto</c> for <c>serve</c>.</summary>
    public static Option<string> ProtocolOption(bool server = false) => new("--protocol")
    {
        Description = server
            ? "The wire protocols to accept: auto (both, told apart by the first byte; the default), native, or uhura (the Node uhura wire)."
            : "The wire protocol: native (Rx.Uhura's own; the default) or uhura (the Node uhura wire, to talk to Node uhura servers).",
        HelpName = "P",
        DefaultValueFactory = _ => server ? AutoProtocol : NativeProtocol,
    };

    /// <summary>The wire a client speaks; anything but native or uhura is bad usage.</summary>
    public static WireProtocol ParseClientProtocol(string? protocol) => protocol switch
    {
        NativeProtocol => WireProtocol.Native,
        UhuraProtocol => WireProtocol.NodeUhura,
        _ => throw new UsageException($"protocol '{protocol}' is not supported (supported: {NativeProtocol}, {UhuraProtocol})."),
    };

    /// <summary>The wires a server accepts; anything but auto, native or uhura is bad usage.</summary>
    public static (bool Native, bool NodeUhura) ParseServerProtocol(string? protocol) => protocol switch
    {
        AutoProtocol => (true, true),
        NativeProtocol => (true, false),
        UhuraProtocol => (false, true),
        _ => throw new UsageException($"protocol '{protocol}' is not supported (supported: {AutoProtocol}, {NativeProtocol}, {UhuraProtocol})."),
    };

    /// <summary>A required endpoint URI option (<c>--listen</c>, <c>--connect</c>).</summary>
    public static Option<string> EndpointOption(string name, string description) => new(name)
    {
        Description = description + " tcp://HOST:PORT or unix:///ABSOLUTE/PATH.",
        HelpName = "URI",
        Required = true,
    };

    /// <summary>Parses an endpoint URI; a bad one is bad usage.</summary>
    public static EndPoint ParseEndpoint(string? uri)
    {
        try
        {
            return UhuraEndpoint.Parse(uri ?? string.Empty);
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }
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
            using var reader = new JsonTextReader(new StringReader(text)) { DateParseHandling = DateParseHandling.None };
            var token = JToken.ReadFrom(reader);
            if (reader.Read())
            {
                throw new JsonReaderException("Additional text after the JSON value.");
            }

            return token;
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
