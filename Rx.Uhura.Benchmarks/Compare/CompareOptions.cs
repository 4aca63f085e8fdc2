using System.Globalization;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>What to run in a comparison: sizes, scenarios, contenders and where the results go.</summary>
public sealed record CompareOptions
{
    /// <summary>The sizes by name.</summary>
    public static IReadOnlyList<string> SizeNames { get; } = ["tiny", "quick", "normal"];

    public BenchSettings Settings { get; init; } = BenchSettings.Normal;

    public string SizeName { get; init; } = "normal";

    /// <summary>Where to write the JSON results; <c>-</c> for stdout (the table then goes to stderr); null for none.</summary>
    public string? JsonPath { get; init; }

    /// <summary>The contenders asked for by name (see <see cref="CompareRunner.ContenderNames"/>); null for every one that can run here.</summary>
    public IReadOnlyList<string>? Contenders { get; init; }

    public IReadOnlyList<Scenario> Scenarios { get; init; } = Compare.Scenarios.All;

    /// <summary>The folder of the Node contender scripts; null to look for <c>bench/</c> next to Rx.Uhura.sln.</summary>
    public string? NodeDirectory { get; init; }

    public bool Help { get; init; }

    /// <summary>The settings of a size name; throws <see cref="ArgumentException"/> for an unknown one.</summary>
    public static BenchSettings SettingsFor(string size) => size switch
    {
        "tiny" => BenchSettings.Tiny,
        "quick" => BenchSettings.Quick,
        "normal" => BenchSettings.Normal,
        _ => throw new ArgumentException($"unknown size '{size}' (expected {string.Join(", ", SizeNames)})"),
    };

    /// <summary>A comma-separated contender list; throws <see cref="ArgumentException"/> for an unknown name.</summary>
    public static IReadOnlyList<string> ParseContenders(string list)
    {
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var name in names.Where(n => !CompareRunner.ContenderNames.Contains(n)))
        {
            throw new ArgumentException($"unknown contender '{name}' (expected {string.Join(", ", CompareRunner.ContenderNames)})");
        }

        return names.Length > 0 ? names : throw new ArgumentException("no contender given");
    }

    /// <summary>A comma-separated scenario list; throws <see cref="ArgumentException"/> for an unknown name.</summary>
    public static IReadOnlyList<Scenario> ParseScenarios(string list)
    {
        var scenarios = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Compare.Scenarios.Parse).ToList();
        return scenarios.Count > 0 ? scenarios : throw new ArgumentException("no scenario given");
    }

    /// <summary>The command line of <c>compare</c> (see <see cref="CompareRunner.Usage"/>); throws <see cref="ArgumentException"/> on bad usage.</summary>
    public static CompareOptions Parse(string[] args)
    {
        var options = new CompareOptions();
        int? reps = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--quick":
                    options = options with { Settings = BenchSettings.Quick, SizeName = "quick" };
                    break;
                case "--size":
                    var size = Value();
                    options = options with { SizeName = size, Settings = SettingsFor(size) };
                    break;
                case "--json":
                    options = options with { JsonPath = Value() };
                    break;
                case "--reps":
                    reps = int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var r) && r > 0 ? r : throw new ArgumentException("--reps needs a positive integer");
                    break;
                case "--contenders":
                    options = options with { Contenders = ParseContenders(Value()) };
                    break;
                case "--scenarios":
                    options = options with { Scenarios = ParseScenarios(Value()) };
                    break;
                case "--node-dir":
                    options = options with { NodeDirectory = Value() };
                    break;
                case "-h" or "--help":
                    options = options with { Help = true };
                    break;
                default:
                    throw new ArgumentException($"unknown option '{args[i]}'");
            }
        }

        return reps is { } n ? options.WithRepetitions(n) : options;
    }

    /// <summary>These options with <paramref name="repetitions"/> measured repetitions per scenario and contender.</summary>
    public CompareOptions WithRepetitions(int repetitions) => this with { Settings = Settings with { Repetitions = repetitions } };
}
