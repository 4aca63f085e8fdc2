using System.Text.RegularExpressions;
using Rx.Uhura.Tests.Interop;

namespace Rx.Uhura.Tests.Architecture;

/// <summary>
/// The library's own rules, read from its sources: no file over 400 lines, no wait on the real clock (every timer and
/// timeout goes through the configured <see cref="TimeProvider"/> or scheduler, so virtual-time tests drive them), and
/// no <c>Console</c> output (the library logs through Microsoft.Extensions.Logging).
/// </summary>
public sealed partial class LibraryRulesTests
{
    private const int MaxLines = 400;

    private static IEnumerable<string> LibrarySources()
    {
        var root = Path.Combine(NodeModules.RepoRoot, "Rx.Uhura");
        var separator = Path.DirectorySeparatorChar;
        return Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{separator}obj{separator}", StringComparison.Ordinal) && !f.Contains($"{separator}bin{separator}", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal);
    }

    [Fact]
    public void The_sources_are_found()
    {
        Assert.True(LibrarySources().Count() > 50, "the library's sources were not found from the test binaries");
    }

    [Fact]
    public void No_library_file_is_over_400_lines()
    {
        var over = LibrarySources()
            .Select(f => (File: Path.GetRelativePath(NodeModules.RepoRoot, f), Lines: File.ReadLines(f).Count()))
            .Where(f => f.Lines > MaxLines)
            .Select(f => $"{f.File}: {f.Lines} lines")
            .ToList();
        Assert.True(over.Count == 0, string.Join(Environment.NewLine, over));
    }

    [Fact]
    public void The_library_never_waits_on_the_real_clock_nor_writes_to_the_console()
    {
        var found = new List<string>();
        foreach (var file in LibrarySources())
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                var code = StripComment(lines[i]);
                foreach (var (rule, pattern) in Rules)
                {
                    if (pattern.IsMatch(code))
                    {
                        found.Add($"{Path.GetRelativePath(NodeModules.RepoRoot, file)}:{i + 1}: {rule}: {lines[i].Trim()}");
                    }
                }
            }
        }

        Assert.True(found.Count == 0, string.Join(Environment.NewLine, found));
    }

    [Theory]
    [InlineData("await Task.Delay(100);")]
    [InlineData("await Task.Delay(TimeSpan.FromSeconds(1), token);")]
    [InlineData("await writing.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);")]
    [InlineData("await t.WaitAsync(_options.CloseTimeout);")]
    [InlineData("Thread.Sleep(10);")]
    [InlineData("var now = DateTime.UtcNow;")]
    [InlineData("var now = DateTimeOffset.Now;")]
    [InlineData("using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));")]
    [InlineData("cts.CancelAfter(1000);")]
    [InlineData("var sw = Stopwatch.StartNew();")]
    [InlineData("Console.WriteLine(\"x\");")]
    [InlineData("new System.Threading.Timer(Tick, null, 0, 10);")]
    public void The_rules_catch_each_real_clock_call(string code)
    {
        Assert.Contains(Rules, r => r.Pattern.IsMatch(code));
    }

    [Theory]
    [InlineData("await Task.Delay(delay, _time, token);")]
    [InlineData("await Task.Delay(Options.HandshakeTimeout, Time);")]
    [InlineData("await writing.WaitAsync(TimeSpan.FromSeconds(5), _node.Time).ConfigureAwait(false);")]
    [InlineData("await t.WaitAsync(_readCancel.Token).ConfigureAwait(false);")]
    [InlineData("using var linger = new CancellationTokenSource(TimeSpan.FromSeconds(2), _node.Time);")]
    [InlineData("var now = _time.GetUtcNow();")]
    [InlineData("_timer = time.CreateTimer(Tick, this, period, period);")]
    public void The_rules_let_the_time_provider_calls_through(string code)
    {
        Assert.DoesNotContain(Rules, r => r.Pattern.IsMatch(code));
    }

    private static readonly (string Rule, Regex Pattern)[] Rules =
    [
        ("Task.Delay without a TimeProvider", DelayWithoutProvider()),
        ("WaitAsync with a timeout and no TimeProvider", WaitWithoutProvider()),
        ("Thread.Sleep", new Regex(@"\bThread\.Sleep\s*\(")),
        ("the wall clock", new Regex(@"\bDateTime(Offset)?\.(Now|UtcNow|Today)\b")),
        ("a real-time cancellation", new Regex(@"new\s+CancellationTokenSource\s*\(\s*TimeSpan\.[^,;]*\)\s*;|\bCancelAfter\s*\(")),
        ("Stopwatch", new Regex(@"\bStopwatch\.")),
        ("a real-time timer", new Regex(@"new\s+(System\.Threading\.)?Timer\s*\(")),
        ("Console", new Regex(@"\bConsole\.")),
    ];

    /// <summary><c>Task.Delay(x)</c> or <c>Task.Delay(x, token)</c>: one argument, or a second that is not a provider.</summary>
    [GeneratedRegex(@"\bTask\.Delay\s*\(\s*[^,()]*(\([^()]*\))?[^,()]*(\)|,\s*(token|cancellationToken|ct|[A-Za-z_.]*Token)\s*\))")]
    private static partial Regex DelayWithoutProvider();

    /// <summary><c>.WaitAsync(timeout)</c> where the argument is a time span rather than a token.</summary>
    [GeneratedRegex(@"\.WaitAsync\s*\(\s*(TimeSpan\.[A-Za-z]+\([^()]*\)|[A-Za-z_.]*(Timeout|Delay|Interval))\s*\)")]
    private static partial Regex WaitWithoutProvider();

    private static string StripComment(string line)
    {
        var trimmed = line.TrimStart();
        if (trimmed.StartsWith("//", StringComparison.Ordinal) || trimmed.StartsWith("///", StringComparison.Ordinal) || trimmed.StartsWith('*'))
        {
            return string.Empty;
        }

        var comment = line.IndexOf(" // ", StringComparison.Ordinal);
        return comment < 0 ? line : line[..comment];
    }
}
