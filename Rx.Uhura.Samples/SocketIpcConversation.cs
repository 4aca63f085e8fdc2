using System.Collections.Concurrent;
using System.Reactive.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Samples;

/// <summary>
/// The conversation example of the Node package <c>@crussell52/socket-ipc</c> (<c>examples/conversation.js</c>) with
/// Rx.Uhura on both sides of the socket-ipc wire, in one process over a temp Unix socket:
/// <list type="bullet">
/// <item>Server: "hello" with a number, broadcast to every client on a timer (the first ones reach nobody);</item>
/// <item>Client: "helloback" with its name and the original message;</item>
/// <item>Server: "helloagain" with the original message, sent by client id only to the client named "charlie".</item>
/// </list>
/// Every message is logged as it is received. Unlike the example, each client answers only the first hello it hears,
/// and the run ends by itself once every client answered and charlie heard "helloagain".
/// </summary>
internal static class SocketIpcConversation
{
    /// <summary>The sample's command-line argument.</summary>
    public const string Name = "socket-ipc";

    private static readonly string[] ClientNames = ["alice", "bob", "charlie"];
    private static readonly TimeSpan HelloInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs the conversation, logging to <paramref name="output"/>; returns the exit code (0 when it happened).</summary>
    public static async Task<int> RunAsync(TextWriter output)
    {
        var log = TextWriter.Synchronized(output);
        var directory = Directory.CreateTempSubdirectory("uhura-ipc-"); // short: a unix socket path must fit in 108 bytes
        try
        {
            await ConverseAsync("unix://" + Path.Combine(directory.FullName, "conversation.sock"), log);
            return 0;
        }
        catch (Exception ex) when (ex is TimeoutException or UhuraException or InvalidOperationException)
        {
            Console.Error.WriteLine("the conversation failed: " + ex.Message);
            return 1;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static async Task ConverseAsync(string uri, TextWriter log)
    {
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Fail(Exception error) => failed.TrySetException(error);

        await using var server = new UhuraServer(UhuraServerOptions.Default with { Protocol = WireProtocol.SocketIpc });

        // Log all messages coming into the server; on the server each one also says which client (its id) sent it.
        using var incoming = server.Events.Subscribe(e => log.WriteLine($"Client ({e.Connection!.Id}) -> Server: [{e.Name}] {Show(e)}"));

        // When a client replies to "hello" with "helloback", reply with "helloagain"... but only to clients named
        // "charlie": by client id, repeating the original message the client was nice enough to include.
        var answered = new ConcurrentDictionary<string, bool>(StringComparer.Ordinal);
        var everyoneAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var helloBacks = server.Event("helloback")
            .Where(e => e.Args is [JObject])
            .Select(e => (ClientId: e.Connection!.Id, Message: (JObject)e.Args[0]))
            .Do(back =>
            {
                answered[(string?)back.Message["clientName"] ?? string.Empty] = true;
                if (ClientNames.All(answered.ContainsKey))
                {
                    everyoneAnswered.TrySetResult();
                }
            })
            .Where(back => (string?)back.Message["clientName"] == "charlie")
            .SelectMany(back => Observable.FromAsync(() => server.SendTo(back.ClientId, "helloagain", back.Message["original"])))
            .Subscribe(_ => { }, Fail);

        await server.ListenAsync(uri);
        log.WriteLine($"server listening on {server.Uri}");

        // Say hello to every client connected, again and again (the example does it every second) until the end.
        var helloGate = new Lock();
        var helloCounter = 0;
        var over = false;
        using var hellos = Observable.Interval(HelloInterval).Subscribe(_ =>
        {
            lock (helloGate)
            {
                if (!over)
                {
                    helloCounter++;
                    log.WriteLine($"Server: [hello] {helloCounter} broadcast to {server.Broadcast("hello", helloCounter)} client(s)");
                }
            }
        });

        var charlieHeardAgain = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clients = new List<UhuraClient>();
        try
        {
            foreach (var name in ClientNames)
            {
                clients.Add(CreateClient(uri, name, log, Fail, name == "charlie" ? charlieHeardAgain : null));
            }

            var finished = await Task.WhenAny(Task.WhenAll(everyoneAnswered.Task, charlieHeardAgain.Task), failed.Task).WaitAsync(Timeout);
            await finished; // a failure throws here
        }
        finally
        {
            lock (helloGate)
            {
                over = true; // no hello from now on, not even from a tick already running
            }

            foreach (var client in clients)
            {
                await client.Disconnect();
            }
        }

        log.WriteLine($"conversation over: {string.Join(", ", ClientNames)} answered hello; only charlie heard helloagain");
    }

    /// <summary>
    /// A client that knows nothing of the server but the socket: it logs every message from the server and answers the
    /// first "hello" with "helloback", its name and the original message. <paramref name="heardAgain"/>, if any, is
    /// completed when it hears "helloagain".
    /// </summary>
    private static UhuraClient CreateClient(string uri, string name, TextWriter log, Action<Exception> fail, TaskCompletionSource? heardAgain)
    {
        var client = UhuraClient.Connect(uri, new UhuraClientOptions { Protocol = WireProtocol.SocketIpc });

        // Log ALL messages from the server, regardless of the topic.
        client.Events.Subscribe(e => log.WriteLine($"Server -> Client ({name}): [{e.Name}] {Show(e)}"));

        client.Event("hello")
            .Take(1)
            .SelectMany(e => Observable.FromAsync(() => client.Send("helloback", new JObject { ["clientName"] = name, ["original"] = e.Args[0] })))
            .Subscribe(_ => { }, fail);

        client.Event("helloagain").Subscribe(_ =>
        {
            if (heardAgain is null)
            {
                fail(new InvalidOperationException($"{name} heard helloagain, meant for charlie only."));
            }
            else
            {
                heardAgain.TrySetResult();
            }
        });

        return client;
    }

    private static string Show(UhuraEvent e) => e.Args.Count == 0 ? "(no message)" : e.Args[0].ToString(Formatting.None);
}
