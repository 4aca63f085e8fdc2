// Without arguments: the README's ping/pong, in one process: a server answers "ping" with "pong"; a client sends "ping"
// and waits. With "socket-ipc": the socket-ipc package's conversation example (SocketIpcConversation.cs). With
// "masterless": the masterless package's counter example (MasterlessCounter.cs). With "verbose": the verbose package's
// README, an event emitted on one node and received on another (VerboseEventBus.cs). With "durable": a server restart
// with sessions in a SQLite file, which its client rides out (DurableRestart.cs).
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura;
using Rx.Uhura.Samples;

if (args is [SocketIpcConversation.Name])
{
    return await SocketIpcConversation.RunAsync(Console.Out);
}

if (args is [MasterlessCounter.Name])
{
    return await MasterlessCounter.RunAsync(Console.Out);
}

if (args is [VerboseEventBus.Name])
{
    return await VerboseEventBus.RunAsync(Console.Out);
}

if (args is [DurableRestart.Name])
{
    return await DurableRestart.RunAsync(Console.Out);
}

if (args.Length > 0)
{
    Console.Error.WriteLine($"usage: Rx.Uhura.Samples [{SocketIpcConversation.Name}|{MasterlessCounter.Name}|{VerboseEventBus.Name}|{DurableRestart.Name}]");
    return 2;
}

await using var server = new UhuraServer();
server.Connections.Subscribe(connection =>
    connection.Event("ping").Subscribe(_ => connection.Send("pong")));
await server.ListenAsync("tcp://127.0.0.1:0");

await using var client = UhuraClient.Connect(server.Uri!);
var pong = client.Event("pong").FirstAsync().ToTask();
await client.Send("ping");

await pong.WaitAsync(TimeSpan.FromSeconds(10));
Console.WriteLine("pong received");
return 0;
