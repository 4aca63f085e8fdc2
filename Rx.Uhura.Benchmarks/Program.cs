using BenchmarkDotNet.Running;
using Rx.Uhura.Benchmarks.Compare;
using Rx.Uhura.Benchmarks.Micro;

const string usage = """
    usage: Rx.Uhura.Benchmarks micro [BenchmarkDotNet args]     codec micro-benchmarks (encode, frame, decode)
           Rx.Uhura.Benchmarks compare [--quick] [--json PATH]  the comparison run (see `compare --help`; also `uhura bench compare`)
           Rx.Uhura.Benchmarks idle-split [--connections N] [--protocol native|uhura]
                                                              idle memory per connection, server and client sides measured apart
    """;

if (args.Length == 0)
{
    Console.Error.WriteLine(usage);
    return 2;
}

switch (args[0])
{
    case "micro":
        // In process (--inProcess): BenchmarkDotNet 0.14 does not know net10.0 as a target for its generated projects.
        var microArgs = args[1..].ToList();
        if (!microArgs.Contains("--filter"))
        {
            microArgs.AddRange(["--filter", "*"]);
        }

        if (!microArgs.Contains("--inProcess"))
        {
            microArgs.Add("--inProcess");
        }

        BenchmarkSwitcher.FromTypes([typeof(CodecBenchmarks)]).Run([.. microArgs]);
        return 0;
    case "compare":
        using (var cts = new CancellationTokenSource())
        {
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                cts.Cancel();
            };
            return await CompareRunner.RunAsync(args[1..], Console.Out, Console.Error, cts.Token);
        }

    case "idle-split":
        return await Rx.Uhura.Benchmarks.IdleSplit.RunAsync(args[1..]);
    case "idle-split-clients":
        return await Rx.Uhura.Benchmarks.IdleSplit.ClientsAsync(args[1..]);
    default:
        Console.Error.WriteLine(usage);
        return 2;
}
