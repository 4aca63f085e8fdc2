using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Cli;

/// <summary>
/// The built <c>uhura</c> command running as a real process (<c>dotnet uhura.dll ...</c>): its stdout read line by
/// line as JSON, its stderr collected, killed on dispose if it is still running.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static readonly Lazy<string> s_dll = new(() => BuiltDll("Rx.Uhura.Cli", "uhura"));

    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly Channel<string> _stderrLines = Channel.CreateUnbounded<string>();
    private readonly StringBuilder _stderr = new();
    private readonly List<string> _stdout = [];

    private CliProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    /// <summary>Everything written to stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Every stdout line read so far (for failure messages).</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return string.Join("\n", _stdout);
            }
        }
    }

    public static CliProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            StandardInputEncoding = new UTF8Encoding(false),
        };
        info.ArgumentList.Add(s_dll.Value);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var cli = new CliProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                cli._lines.Writer.TryComplete();
                return;
            }

            lock (cli._stdout)
            {
                cli._stdout.Add(e.Data);
            }

            cli._lines.Writer.TryWrite(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                cli._stderrLines.Writer.TryComplete();
                return;
            }

            lock (cli._stderr)
            {
                cli._stderr.AppendLine(e.Data);
            }

            cli._stderrLines.Writer.TryWrite(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>Writes one line to the process's stdin and flushes it.</summary>
    public async Task WriteLineAsync(string line)
    {
        await _process.StandardInput.WriteAsync(line + "\n");
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>Closes the process's stdin (it reads end of file).</summary>
    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>Runs the command to its end and returns its exit code.</summary>
    public static async Task<(int ExitCode, CliProcess Process)> RunAsync(params string[] args)
    {
        var cli = Start(args);
        return (await cli.WaitForExitAsync(), cli);
    }

    /// <summary>The next stdout line, parsed; fails if it is not one JSON object or none comes within the timeout.</summary>
    public async Task<JObject> NextLineAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        string line;
        try
        {
            line = await _lines.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No stdout line within {Timeout}. stdout so far:\n{Stdout}\nstderr:\n{Stderr}");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"stdout ended. stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        using var reader = new JsonTextReader(new StringReader(line)) { DateParseHandling = DateParseHandling.None };
        return JObject.Load(reader);
    }

    /// <summary>Reads lines until one has <c>"type": type</c> and matches <paramref name="match"/>; returns it.</summary>
    public async Task<JObject> WaitForLineAsync(string type, Func<JObject, bool>? match = null)
    {
        while (true)
        {
            var line = await NextLineAsync();
            if ((string?)line["type"] == type && (match is null || match(line)))
            {
                return line;
            }
        }
    }

    /// <summary>Reads stderr lines until one contains <paramref name="text"/> (e.g. a <c>--verbose</c> log); fails after the timeout.</summary>
    public async Task<string> WaitForStderrAsync(string text)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            while (true)
            {
                var line = await _stderrLines.Reader.ReadAsync(timeout.Token);
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    return line;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No stderr line with '{text}' within {Timeout}. stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"stderr ended without a line with '{text}'. stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }
    }

    /// <summary>The remaining stdout lines, once the process closed its stdout.</summary>
    public async Task<List<JObject>> RemainingLinesAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var lines = new List<JObject>();
        await foreach (var line in _lines.Reader.ReadAllAsync(timeout.Token))
        {
            lines.Add(JObject.Parse(line));
        }

        return lines;
    }

    /// <summary>Waits (bounded) for the process to exit and for its output to be read; returns the exit code.</summary>
    public Task<int> WaitForExitAsync() => WaitForExitAsync(Timeout);

    /// <summary>Waits up to <paramref name="limit"/> for the process to exit and for its output to be read; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The process did not exit within {limit}. stdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM through <c>/bin/kill</c> (<see cref="Process.Kill()"/> would send SIGKILL).</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("/bin/kill", ["-TERM", Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            UseShellExecute = false,
        })!;
        using var timeout = new CancellationTokenSource(Timeout);
        await kill.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, kill.ExitCode);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    /// <summary>
    /// <c>&lt;repo&gt;/PROJECT/bin/&lt;Configuration of these tests&gt;/net10.0/ASSEMBLY.dll</c>: a program of the solution
    /// that the test project builds (a ProjectReference without its output assembly).
    /// </summary>
    internal static string BuiltDll(string project, string assembly)
    {
        var baseDirectory = AppContext.BaseDirectory;
        var root = new DirectoryInfo(baseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Rx.Uhura.sln")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new InvalidOperationException($"No Rx.Uhura.sln above {baseDirectory}.");
        }

        var segments = baseDirectory.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var bin = Array.LastIndexOf(segments, "bin");
        var configuration = bin >= 0 && bin + 1 < segments.Length ? segments[bin + 1] : "Debug";
        var dll = Path.Combine(root.FullName, project, "bin", configuration, "net10.0", assembly + ".dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{project} is not built: {dll} is missing.");
        }

        return dll;
    }

    /// <summary>A loopback TCP port nothing listens on (bound on port 0, then released), for "nobody there" tests.</summary>
    public static int FreePort()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}
