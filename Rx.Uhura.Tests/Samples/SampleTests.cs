using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Cli;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Samples;

/// <summary>The samples (<c>Rx.Uhura.Samples</c>) run as a process, as <c>dotnet run --project Rx.Uhura.Samples</c> does.</summary>
[Trait("Category", "Sample")]
public sealed partial class SampleTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly Lazy<string> Dll = new(() => CliProcess.BuiltDll("Rx.Uhura.Samples", "Rx.Uhura.Samples"));

    [Fact]
    public async Task Without_arguments_the_sample_prints_pong_received_and_exits_zero()
    {
        var (exitCode, stdout, stderr) = await RunAsync();
        Assert.True(exitCode == 0, stderr);
        Assert.Equal(["pong received"], stdout);
    }

    [Fact]
    public async Task The_socket_ipc_conversation_ends_by_itself_and_only_charlie_hears_helloagain()
    {
        var (exitCode, stdout, stderr) = await RunAsync("socket-ipc");
        var all = string.Join('\n', stdout);
        Assert.True(exitCode == 0, $"exit {exitCode}\n{all}\n{stderr}");
        Assert.StartsWith("server listening on unix:///", stdout[0], StringComparison.Ordinal);
        Assert.Contains(stdout, line => line.StartsWith("conversation over", StringComparison.Ordinal));

        // Client (<id>) -> Server: [helloback] {"clientName":"bob","original":1}, once per client, each from its own id.
        var helloBacks = stdout.Select(line => ToServer().Match(line)).Where(m => m.Success)
            .Select(m => (ClientId: m.Groups[1].Value, Topic: m.Groups[2].Value, Message: JToken.Parse(m.Groups[3].Value)))
            .ToList();
        Assert.All(helloBacks, h => Assert.Equal("helloback", h.Topic));
        Assert.Equal(["alice", "bob", "charlie"], helloBacks.Select(h => (string)h.Message["clientName"]!).Order());
        Assert.Equal(3, helloBacks.Select(h => h.ClientId).Distinct().Count());
        Assert.All(helloBacks, h => Assert.True(Guid.TryParse(h.ClientId, out _), h.ClientId));

        // Server -> Client (<name>): [<topic>] <message>: every client heard hello; only charlie heard helloagain,
        // once, repeating the hello it answered.
        var toClients = stdout.Select(line => ToClient().Match(line)).Where(m => m.Success)
            .Select(m => (Name: m.Groups[1].Value, Topic: m.Groups[2].Value, Message: m.Groups[3].Value))
            .ToList();
        foreach (var name in new[] { "alice", "bob", "charlie" })
        {
            Assert.Contains(toClients, c => c.Name == name && c.Topic == "hello");
        }

        var again = Assert.Single(toClients, c => c.Topic == "helloagain");
        Assert.Equal("charlie", again.Name);
        var charlie = helloBacks.Single(h => (string?)h.Message["clientName"] == "charlie");
        Assert.True(JToken.DeepEquals(charlie.Message["original"], JToken.Parse(again.Message)), all);
    }

    [Fact]
    public async Task The_durable_sample_rides_out_a_server_restart_with_its_session_and_queued_send()
    {
        var (exitCode, stdout, stderr) = await RunAsync("durable");
        var all = string.Join('\n', stdout);
        Assert.True(exitCode == 0, $"exit {exitCode}\n{all}\n{stderr}");
        var session = Regex.Match(stdout[0], "^session (\\S+) started with user=ada$");
        Assert.True(session.Success, all);
        Assert.Equal(
            ["server stopped", "server restarted on the same socket and file", $"session {session.Groups[1].Value} resumed: True, user=ada", "got note: sent while the server was down"],
            stdout.Skip(1));
    }

    [Fact]
    public async Task The_masterless_counter_ping_pongs_to_500_printing_every_hundred_and_exits_zero()
    {
        var (exitCode, stdout, stderr) = await RunAsync("masterless");
        Assert.True(exitCode == 0, $"exit {exitCode}\n{string.Join('\n', stdout)}\n{stderr}");
        Assert.Equal(["counter at 0", "counter at 100", "counter at 200", "counter at 300", "counter at 400", "counter at 500"], stdout);
    }

    [Fact]
    public async Task The_verbose_example_receives_the_emitted_event_on_the_other_node_and_ends_both()
    {
        var (exitCode, stdout, stderr) = await RunAsync("verbose");
        var all = string.Join('\n', stdout);
        Assert.True(exitCode == 0, $"exit {exitCode}\n{all}\n{stderr}");
        Assert.Equal(4, stdout.Length);
        Assert.Matches(@"^NODE-ID-000001 listening on tcp://127\.0\.0\.1:\d+$", stdout[0]);
        Assert.Equal("NODE-ID-000002 connected to NODE-ID-000001", stdout[1]);
        Assert.Equal("got event: [\"a\",1] from NODE-ID-000001", stdout[2]);
        Assert.Equal("nodes ended", stdout[3]);
    }

    [Fact]
    public async Task An_unknown_sample_exits_two_with_a_usage_line()
    {
        var (exitCode, stdout, stderr) = await RunAsync("no-such-sample");
        Assert.Equal(2, exitCode);
        Assert.Empty(stdout);
        Assert.StartsWith("usage:", stderr, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string[] Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync("dotnet", [Dll.Value, .. args], Timeout);
        return (exitCode, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), stderr);
    }

    [GeneratedRegex(@"^Client \(([^)]+)\) -> Server: \[([^\]]*)\] (.*)$")]
    private static partial Regex ToServer();

    [GeneratedRegex(@"^Server -> Client \(([^)]+)\): \[([^\]]*)\] (.*)$")]
    private static partial Regex ToClient();
}
