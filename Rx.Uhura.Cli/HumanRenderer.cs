using System.Globalization;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Spectre.Console;

namespace Rx.Uhura.Cli;

/// <summary>
/// The rendering for a person on a terminal: one line per record, the local time first, the record's kind and the
/// names that matter highlighted (Spectre markup; plain text when the console has no colors). For example
/// <c>12:00:01 ▸ connect c1 session abc (resumed)</c> and <c>12:00:02   event ping ["a",1]</c>.
/// </summary>
internal sealed class HumanRenderer(IAnsiConsole console, TimeProvider time) : IRecordRenderer
{
    /// <summary>The console written to (progress bars and live views draw on it too).</summary>
    public IAnsiConsole Console { get; } = console;

    public void Render(JObject record)
    {
        try
        {
            Console.MarkupLine($"[grey]{time.GetLocalNow().ToString("HH:mm:ss", CultureInfo.InvariantCulture)}[/] {Describe(record)}");
        }
        catch (IOException)
        {
            // The terminal went away: nothing more can be shown.
        }
    }

    /// <summary>The markup of one record, without the time.</summary>
    public static string Describe(JObject record)
    {
        var type = Text(record["type"]) ?? "?";
        return type switch
        {
            "listening" => $"[green]●[/] listening on [bold]{E(record["endpoint"])}[/]{Optional(" as ", record["id"])}{Optional(" protocol ", record["protocol"])}",
            "connect" => $"[green]▸[/] connect [bold]{E(record["conn"])}[/]{Optional(" session ", record["session"])}{(Flag(record["resumed"]) ? " [green](resumed)[/]" : string.Empty)}",
            "disconnect" => $"[red]◂[/] disconnect [bold]{E(record["conn"])}[/]{Parenthesized(record["reason"])}",
            "event" => $"  event [bold cyan]{E(record["event"])}[/] {Json(record["args"])}{Dim(record["conn"])}{OriginOf(record)}",
            "session" => $"  session [bold]{E(record["conn"])}[/] [yellow]{E(record["key"])}[/] = {Json(record["value"])}",
            "state" => State(record),
            "peer-connect" => $"[green]▸[/] peer [bold]{E(record["peer"])}[/] connected{(Flag(record["reconnect"]) ? " [green](reconnect)[/]" : string.Empty)}",
            "peer-disconnect" => $"[red]◂[/] peer [bold]{E(record["peer"])}[/] disconnected{Parenthesized(record["error"])}",
            "message" => $"  message from [bold]{E(record["from"])}[/] {Json(record["data"])}",
            _ => $"  [bold]{Markup.Escape(type)}[/] {Rest(record)}",
        };
    }

    private static string State(JObject record)
    {
        var state = Text(record["state"]) ?? "?";
        var color = state switch
        {
            "connected" => "green",
            "disconnected" or "closed" => "red",
            _ => "yellow",
        };
        var details = state switch
        {
            "connected" => (Flag(record["resumed"]) ? " (resumed)" : string.Empty) + (Flag(record["reconnect"]) ? " (reconnect)" : string.Empty),
            "reconnecting" => $" attempt {E(record["attempt"])} in {E(record["delay"])} ms{Parenthesized(record["error"])}",
            _ => Parenthesized(record["reason"]) + Parenthesized(record["error"]),
        };
        return $"[{color}]■[/] [{color}]{Markup.Escape(state)}[/]{details}";
    }

    private static string OriginOf(JObject record) => record["origin"] is { Type: not JTokenType.Null } origin ? $" [grey]from {E(origin)}[/]" : string.Empty;

    private static string Rest(JObject record) => string.Join(" ", record.Properties()
        .Where(p => p.Name != "type")
        .Select(p => $"[grey]{Markup.Escape(p.Name)}[/]={Json(p.Value)}"));

    private static string Dim(JToken? token) => Text(token) is { } text ? $" [grey]({Markup.Escape(text)})[/]" : string.Empty;

    private static string Optional(string label, JToken? token) => Text(token) is { } text ? label + Markup.Escape(text) : string.Empty;

    private static string Parenthesized(JToken? token) => Text(token) is { } text ? $" ({Markup.Escape(text)})" : string.Empty;

    private static bool Flag(JToken? token) => token is { Type: JTokenType.Boolean } && (bool)token;

    /// <summary>A value as text: a string as it is, anything else as its JSON; null for a missing or null value.</summary>
    private static string? Text(JToken? token) => token switch
    {
        null or { Type: JTokenType.Null } => null,
        { Type: JTokenType.String } => (string?)token,
        _ => token.ToString(Formatting.None),
    };

    private static string E(JToken? token) => Markup.Escape(Text(token) ?? "-");

    private static string Json(JToken? token) => Markup.Escape(token?.ToString(Formatting.None) ?? "null");
}
