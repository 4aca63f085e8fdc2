// The README's ping/pong, in one process: a server answers "ping" with "pong"; a client sends "ping" and waits.
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura;

await using var server = new UhuraServer();
server.Connections.Subscribe(connection =>
    connection.Event("ping").Subscribe(_ => connection.Send("pong")));
await server.ListenAsync("tcp://127.0.0.1:0");

await using var client = UhuraClient.Connect(server.Uri!);
var pong = client.Event("pong").FirstAsync().ToTask();
await client.Send("ping");

await pong.WaitAsync(TimeSpan.FromSeconds(10));
Console.WriteLine("pong received");
