using Newtonsoft.Json.Linq;
using Rx.Uhura.Cli;
using Spectre.Console;

namespace Rx.Uhura.Tests.Cli;

/// <summary>The output of the <c>uhura</c> command in-process: which renderer is chosen, and what each renders.</summary>
[Trait("Category", "Cli")]
public sealed class OutputTests
{
    /// <summary>A clock that always says 12:00:01 local time (UTC here).</summary>
    private sealed class FixedTime : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 11, 21, 12, 0, 1, TimeSpan.Zero);

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    private static (JsonLines Output, StringWriter Text) Human(bool color)
    {
        var text = new StringWriter { NewLine = "\n" };
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = color ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = color ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(text),
        });
        console.Profile.Width = 200;
        return (new JsonLines(new HumanRenderer(console, new FixedTime())), text);
    }

    private static string[] Lines(StringWriter text) => text.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');

    [Theory]
    [InlineData(true, false, false, null, false)]   // redirected: JSON
    [InlineData(true, true, false, null, false)]    // redirected and --json: JSON
    [InlineData(false, true, false, null, false)]   // a terminal with --json: JSON
    [InlineData(false, false, false, null, true)]   // a terminal: human
    [InlineData(false, false, true, null, true)]    // a terminal, --no-color: still human
    [InlineData(true, false, true, "1", false)]     // redirected, whatever the colors
    public void Json_lines_unless_stdout_is_a_terminal_and_json_is_not_asked_for(bool redirected, bool json, bool noColor, string? noColorVariable, bool human)
    {
        var mode = OutputMode.Select(redirected, json, noColor, noColorVariable);
        Assert.Equal(human, mode.Human);
    }

    [Theory]
    [InlineData(false, null, true)]
    [InlineData(true, null, false)]
    [InlineData(false, "1", false)]
    [InlineData(false, "", true)]
    public void A_terminal_rendering_is_colored_unless_no_color_is_asked_for_by_flag_or_variable(bool noColor, string? noColorVariable, bool color)
    {
        var mode = OutputMode.Select(outputRedirected: false, json: false, noColor, noColorVariable);
        Assert.True(mode.Human);
        Assert.Equal(color, mode.Color);
    }

    [Fact]
    public void The_json_renderer_writes_each_record_as_one_compact_line()
    {
        var text = new StringWriter { NewLine = "\n" };
        var output = new JsonLines(text);
        output.Write("connect", ("conn", "c1"), ("session", "abc"), ("resumed", true));
        output.Write("event", ("conn", "c1"), ("event", "ping"), ("args", new JArray("a", 1)));

        Assert.False(output.IsHuman);
        Assert.Null(output.Console);
        Assert.Equal(
            "{\"type\":\"connect\",\"conn\":\"c1\",\"session\":\"abc\",\"resumed\":true}\n{\"type\":\"event\",\"conn\":\"c1\",\"event\":\"ping\",\"args\":[\"a\",1]}\n",
            text.ToString());
    }

    [Fact]
    public void The_human_renderer_writes_one_readable_line_per_record_with_the_time_first()
    {
        var (output, text) = Human(color: false);
        output.Write("listening", ("endpoint", "tcp://127.0.0.1:5555"));
        output.Write("connect", ("conn", "c1"), ("session", "abc"), ("resumed", true));
        output.Write("event", ("conn", "c1"), ("event", "ping"), ("args", new JArray("a", 1)));
        output.Write("session", ("conn", "c1"), ("key", "user"), ("value", new JObject { ["name"] = "x" }));
        output.Write("state", ("state", "reconnecting"), ("attempt", 2), ("delay", 200), ("error", "refused"));
        output.Write("disconnect", ("conn", "c1"), ("reason", "remote-close"));
        output.Write("peer-connect", ("peer", "n2"), ("reconnect", false));
        output.Write("mystery", ("a", 1), ("b", "[x]"));

        Assert.True(output.IsHuman);
        Assert.NotNull(output.Console);
        Assert.Equal(
            [
                "12:00:01 ● listening on tcp://127.0.0.1:5555",
                "12:00:01 ▸ connect c1 session abc (resumed)",
                "12:00:01   event ping [\"a\",1] (c1)",
                "12:00:01   session c1 user = {\"name\":\"x\"}",
                "12:00:01 ■ reconnecting attempt 2 in 200 ms (refused)",
                "12:00:01 ◂ disconnect c1 (remote-close)",
                "12:00:01 ▸ peer n2 connected",
                "12:00:01   mystery a=1 b=\"[x]\"",
            ],
            Lines(text));
    }

    [Fact]
    public void The_human_renderer_highlights_the_event_name_and_escapes_markup_in_values()
    {
        var (output, text) = Human(color: true);
        output.Write("event", ("conn", "c1"), ("event", "ping[1]"), ("args", new JArray("[red]not markup[/]")));

        var line = Assert.Single(Lines(text));
        Assert.Contains("\u001b[", line, StringComparison.Ordinal);           // colored
        Assert.Matches("\u001b\\[[0-9;]*m" + "ping\\[1\\]" + "\u001b\\[0m", line); // the name alone in its own color
        Assert.Contains("[\"[red]not markup[/]\"]", line, StringComparison.Ordinal); // shown as it is
    }

    [Fact]
    public void Stats_rates_come_from_the_difference_between_two_polls_on_the_server_clock()
    {
        var t0 = new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);
        static ConnectionStatistics Conn(string id, long eventsIn, long bytesOut) => new()
        {
            Id = id,
            Protocol = WireProtocol.Native,
            EventsIn = eventsIn,
            BytesOut = bytesOut,
        };

        var rates = new StatsCommand.RateTracker();
        var first = rates.Next(new ServerStatistics { StartedAt = t0, Timestamp = t0.AddSeconds(10), Connections = [Conn("a", 100, 1000)] });
        var second = rates.Next(new ServerStatistics { StartedAt = t0, Timestamp = t0.AddSeconds(12), Connections = [Conn("a", 300, 5000), Conn("b", 7, 0)] });

        Assert.Null(first.Connections[0].Counters.Rates);
        Assert.Null(first.Totals.Rates);
        Assert.Equal(100, second.Connections[0].Counters.Rates!.EventsIn);
        Assert.Equal(2000, second.Connections[0].Counters.Rates!.BytesOut);
        Assert.Null(second.Connections[1].Counters.Rates); // new since the previous poll
        Assert.Equal(307, second.Totals.EventsIn);
        Assert.Equal(100, second.Totals.Rates!.EventsIn);

        var line = StatsCommand.Line(second);
        Assert.Equal("stats", (string?)line["type"]);
        Assert.Equal(2, (int)line["count"]!);
        Assert.Equal(12.0, (double)line["uptime"]!);
        Assert.Equal("native", (string?)line["connections"]![0]!["protocol"]);
        Assert.Equal(100.0, (double)line["connections"]![0]!["eventsInPerSec"]!);
        Assert.Equal(JTokenType.Null, line["connections"]![1]!["eventsInPerSec"]!.Type);
    }

    [Fact]
    public void Every_disconnect_reason_has_a_kebab_case_name_in_the_json_output()
    {
        var names = Enum.GetValues<DisconnectReason>().Select(Common.Format).ToList();
        Assert.All(names, name => Assert.Matches("^[a-z]+(-[a-z]+)*$", name));
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal("session-in-use", Common.Format(DisconnectReason.SessionInUse));
        Assert.Equal("slow-consumer", Common.Format(DisconnectReason.SlowConsumer));
    }
}
