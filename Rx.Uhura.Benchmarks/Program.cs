using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Rx.Uhura.Benchmarks.Compare;
using Rx.Uhura.Benchmarks.Micro;

const string usage = """
    usage: Rx.Uhura.Benchmarks micro [BenchmarkDotNet args]     codec micro-benchmarks (encode, frame, decode)
           Rx.Uhura.Benchmarks compare [--quick] [--json PATH]  the comparison run (see `compare --help`)
    """;

if (args.Length == 0)
{
    Console.Error.WriteLine(usage);
    return 2;
}

switch (args[0])
{
    case "micro":
        // In-process toolchain: BenchmarkDotNet 0.14 does not know net10.0 as a target for its generated projects.
        var config = DefaultConfig.Instance.AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance));
        BenchmarkSwitcher.FromTypes([typeof(CodecBenchmarks)]).Run(args[1..].Length == 0 ? ["--filter", "*"] : args[1..], config);
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

    default:
        Console.Error.WriteLine(usage);
        return 2;
}
