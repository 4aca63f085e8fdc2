using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Sqlite;

namespace Rx.Uhura.Samples;

/// <summary>
/// A server restart that its client does not notice: the sessions are in a SQLite file, the server stops and a new one
/// starts on the same socket and file, the client reconnects by itself, its session is resumed with its keys, and what
/// it sent while the server was down arrives once.
/// </summary>
internal static class DurableRestart
{
    /// <summary>The sample's command-line argument.</summary>
    public const string Name = "durable";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs the example, printing to <paramref name="output"/>; returns the exit code (0 when everything came back).</summary>
    public static async Task<int> RunAsync(TextWriter output)
    {
        var directory = Directory.CreateTempSubdirectory("rx-uhura-durable-").FullName;
        var socket = "unix://" + Path.Combine(directory, "server.sock");
        var database = Path.Combine(directory, "sessions.db");
        try
        {
            var (first, firstStore) = await StartAsync(socket, database, _ => { });
            await using var client = UhuraClient.Connect(socket, new UhuraClientOptions
            {
                Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) },
            });
            await client.WhenConnectedAsync().WaitAsync(Timeout);
            client.Session.Set("user", "ada");
            await client.Send("hello").WaitAsync(Timeout); // the session change travels before it: the server saved it
            output.WriteLine($"session {client.Session.Id} started with user=ada");

            await first.CloseAsync().WaitAsync(Timeout);
            await firstStore.DisposeAsync();
            output.WriteLine("server stopped");
            var note = client.Send("note", "sent while the server was down"); // waits in the client's queue

            Task<Connection> resumed = null!;
            Task<UhuraEvent> noted = null!;
            var (second, secondStore) = await StartAsync(socket, database, server =>
            {
                resumed = server.Connections.FirstAsync().ToTask(); // subscribed before it listens: nothing is missed
                noted = server.Event("note").FirstAsync().ToTask();
            });
            output.WriteLine("server restarted on the same socket and file");
            await note.WaitAsync(Timeout);
            var connection = await resumed.WaitAsync(Timeout);
            output.WriteLine($"session {connection.Session.Id} resumed: {connection.Resumed}, user={connection.Session.Get<string>("user")}");
            output.WriteLine($"got note: {(await noted.WaitAsync(Timeout)).Arg<string>(0)}");
            var ok = connection.Resumed && connection.Session.Get<string>("user") == "ada";

            await client.Disconnect().WaitAsync(Timeout);
            await second.CloseAsync().WaitAsync(Timeout); // saves the session as its link ends: before the store closes
            await secondStore.DisposeAsync();
            return ok ? 0 : 1;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<(UhuraServer Server, SqliteSessionStore Store)> StartAsync(string socket, string database, Action<UhuraServer> subscribe)
    {
        var store = new SqliteSessionStore(database);
        await store.EnsureCreatedAsync();
        var server = new UhuraServer(UhuraServerOptions.Default with { SessionStore = store });
        subscribe(server);
        await server.ListenAsync(socket);
        return (server, store);
    }
}
