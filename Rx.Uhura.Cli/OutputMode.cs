using System.CommandLine;
using Spectre.Console;

namespace Rx.Uhura.Cli;

/// <summary>
/// How stdout is rendered: JSON lines when it is not a terminal or with <c>--json</c> (the contract of CLI.md), the
/// human rendering (<see cref="HumanRenderer"/>) on a terminal, colored unless <c>--no-color</c> or <c>NO_COLOR</c>.
/// </summary>
/// <param name="Human">Whether records are rendered for a person.</param>
/// <param name="Color">Whether the human rendering uses colors.</param>
internal sealed record OutputMode(bool Human, bool Color)
{
    /// <summary><c>--json</c>: JSON lines even on a terminal. Declared once on the root command, recursive.</summary>
    public static Option<bool> Json { get; } = new("--json")
    {
        Description = "Print JSON lines on stdout even on a terminal (they are the default when stdout is redirected).",
        Recursive = true,
    };

    /// <summary><c>--no-color</c>: a terminal rendering without colors (as the NO_COLOR variable does).</summary>
    public static Option<bool> NoColor { get; } = new("--no-color")
    {
        Description = "No colors on a terminal (also when the NO_COLOR environment variable is set).",
        Recursive = true,
    };

    /// <summary>JSON lines.</summary>
    public static OutputMode Machine { get; } = new(Human: false, Color: false);

    /// <summary>
    /// The choice: JSON when stdout is redirected or <paramref name="json"/>; otherwise human, colored unless
    /// <paramref name="noColor"/> or a non-empty NO_COLOR (<paramref name="noColorVariable"/>).
    /// </summary>
    public static OutputMode Select(bool outputRedirected, bool json, bool noColor, string? noColorVariable)
        => outputRedirected || json
            ? Machine
            : new OutputMode(Human: true, Color: !noColor && string.IsNullOrEmpty(noColorVariable));

    /// <summary>The mode of this process, from the parsed flags and the real stdout.</summary>
    public static OutputMode Select(ParseResult parse) => Select(
        System.Console.IsOutputRedirected,
        parse.GetValue(Json),
        parse.GetValue(NoColor),
        Environment.GetEnvironmentVariable("NO_COLOR"));

    /// <summary>The output of this mode on stdout.</summary>
    public JsonLines CreateStdout() => Human
        ? new JsonLines(new HumanRenderer(CreateConsole(System.Console.Out, Color), TimeProvider.System))
        : new JsonLines(JsonRenderer.Stdout());

    /// <summary>
    /// Where progress bars go: the human stdout's console; else, unless <c>--json</c>, stderr when it is a terminal
    /// (stdout may then be piped to a program); else nowhere (null).
    /// </summary>
    public static IAnsiConsole? ProgressConsole(ParseResult parse)
    {
        if (JsonLines.Stdout.Console is { } console)
        {
            return console;
        }

        if (parse.GetValue(Json) || System.Console.IsErrorRedirected)
        {
            return null;
        }

        var mode = Select(outputRedirected: false, json: false, parse.GetValue(NoColor), Environment.GetEnvironmentVariable("NO_COLOR"));
        return CreateConsole(System.Console.Error, mode.Color);
    }

    /// <summary>A Spectre console on <paramref name="writer"/>, with or without colors.</summary>
    public static IAnsiConsole CreateConsole(TextWriter writer, bool color, bool interactive = true) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Ansi = color ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = color ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        Out = new AnsiConsoleOutput(writer),
    });
}
