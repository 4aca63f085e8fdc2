using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// A Node driver script from <c>interop/</c> (e.g. <c>uhura-server.js</c>) running as a child process:
/// commands go to its stdin as JSON lines, its stdout JSON lines come back as <see cref="JObject"/>s.
/// </summary>
/// <remarks>
/// <see cref="WaitForAsync"/> scans, in arrival order, every line received since start that no earlier
/// wait has consumed; lines it skips stay available to later waits.
/// </remarks>
public sealed class NodePeer : IAsyncDisposable
{
    /// <summary>Default for <see cref="WaitForAsync"/>.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    // Reads are effectively unbounded for any sane test; the bound only stops a runaway peer
    // from eating memory while nobody reads (the pump then waits, and so does node's stdout).
    private const int ChannelCapacity = 100_000;
    private const int StdoutTailLines = 20;
    private const int StderrTailChars = 16_000;
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(5);
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    private readonly Process _process;
    private readonly string _description;
    private readonly Channel<JObject> _lines = Channel.CreateBounded<JObject>(
        new BoundedChannelOptions(ChannelCapacity) { SingleWriter = true, SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly List<JObject> _received = [];
    private readonly List<JObject> _unconsumed = [];
    private readonly Queue<string> _stdoutTail = new();
    private readonly StringBuilder _stderr = new();
    private readonly SemaphoreSlim _waitGate = new(1, 1);
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private int _disposed;

    private NodePeer(Process process, string description)
    {
        _process = process;
        _description = description;
        _stdoutPump = Task.Run(PumpStdoutAsync);
        _stderrPump = Task.Run(PumpStderrAsync);
    }

    /// <summary>Every stdout line parsed so far, in arrival order (consumed by a wait or not).</summary>
    public IReadOnlyList<JObject> Received
    {
        get
        {
            lock (_received)
            {
                return _received.ToArray();
            }
        }
    }

    /// <summary>The process id of the node process.</summary>
    public int ProcessId => _process.Id;

    /// <summary>
    /// Installs <c>interop/node_modules</c> if needed, then starts <c>node SCRIPT ARGS...</c> in <c>interop/</c>.
    /// </summary>
    /// <param name="script">A script path relative to <c>interop/</c>, e.g. <c>uhura-server.js</c>.</param>
    /// <param name="args">Further command-line arguments for the script.</param>
    public static async Task<NodePeer> StartAsync(string script, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(args);
        await NodeModules.Interop.EnsureInstalledAsync();
        var directory = NodeModules.Interop.Folder;
        if (!File.Exists(Path.Combine(directory, script)))
        {
            throw new FileNotFoundException($"No driver script {script} in {directory}.", Path.Combine(directory, script));
        }

        var startInfo = new ProcessStartInfo(NodeModules.NodeExecutable())
        {
            WorkingDirectory = directory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = Utf8NoBom,
            StandardOutputEncoding = Utf8NoBom,
            StandardErrorEncoding = Utf8NoBom,
        };
        startInfo.ArgumentList.Add(script);
        foreach (var argument in args)
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start node {script}.");
        process.StandardInput.AutoFlush = false;
        return new NodePeer(process, string.Join(' ', ["node", script, .. args]));
    }

    /// <summary>Writes <paramref name="command"/> to the peer's stdin as one JSON line.</summary>
    public async Task SendAsync(object command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var line = JsonConvert.SerializeObject(command, Formatting.None);
        await _writeGate.WaitAsync();
        try
        {
            await _process.StandardInput.WriteAsync(line + "\n");
            await _process.StandardInput.FlushAsync();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            throw new InvalidOperationException($"Could not send {line} to {_description}.\n{Diagnostics()}", e);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>
    /// Returns (and consumes) the first line not consumed yet that matches <paramref name="predicate"/>,
    /// waiting up to <paramref name="timeout"/> (default 10 s) for it. A predicate that throws counts as no match.
    /// </summary>
    /// <exception cref="TimeoutException">No matching line in time; the message shows the peer's recent output.</exception>
    /// <exception cref="InvalidOperationException">The peer's stdout closed (it exited) before a matching line came.</exception>
    public async Task<JObject> WaitForAsync(Func<JObject, bool> predicate, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var limit = timeout ?? DefaultTimeout;
        using var cancellation = new CancellationTokenSource(limit);
        try
        {
            await _waitGate.WaitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Another wait on {_description} held it for {limit}.\n{Diagnostics()}");
        }

        try
        {
            for (var i = 0; i < _unconsumed.Count; i++)
            {
                if (Matches(predicate, _unconsumed[i]))
                {
                    var found = _unconsumed[i];
                    _unconsumed.RemoveAt(i);
                    return found;
                }
            }

            var reader = _lines.Reader;
            while (true)
            {
                while (reader.TryRead(out var line))
                {
                    if (Matches(predicate, line))
                    {
                        return line;
                    }

                    _unconsumed.Add(line);
                }

                bool more;
                try
                {
                    more = await reader.WaitToReadAsync(cancellation.Token);
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException(
                        $"No line from {_description} matched within {limit}.\n{Diagnostics()}");
                }

                if (!more)
                {
                    throw new InvalidOperationException(
                        $"{_description} closed its stdout (exited{ExitCodeText()}) before a matching line arrived.\n{Diagnostics()}");
                }
            }
        }
        finally
        {
            _waitGate.Release();
        }
    }

    /// <summary>
    /// Kills the node process (SIGKILL: no goodbye, the OS closes its sockets) and waits until it has exited, so its
    /// listening port is free again. Disposing afterwards only collects the pipes.
    /// </summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        using var exit = new CancellationTokenSource(ExitTimeout);
        await _process.WaitForExitAsync(exit.Token);
    }

    /// <summary>Sends <c>{"cmd":"exit"}</c>, closes stdin, waits up to 5 s, then kills the process tree.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_process.HasExited)
        {
            try
            {
                await SendAsync(new { cmd = "exit" });
            }
            catch (InvalidOperationException)
            {
                // Already gone or stdin broken; closing and killing below still apply.
            }
        }

        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The pipe is already broken: the process has exited.
        }

        using (var exit = new CancellationTokenSource(ExitTimeout))
        {
            try
            {
                await _process.WaitForExitAsync(exit.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        try
        {
            // The pipes close with the process; the pumps end right after it.
            await Task.WhenAll(_stdoutPump, _stderrPump).WaitAsync(ExitTimeout);
        }
        catch (TimeoutException)
        {
            // A grandchild still holding the pipes open; nothing more to read that matters.
        }

        _process.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => _description;

    private static bool Matches(Func<JObject, bool> predicate, JObject line)
    {
        try
        {
            return predicate(line);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    private async Task PumpStdoutAsync()
    {
        try
        {
            var stdout = _process.StandardOutput;
            while (await stdout.ReadLineAsync() is { } text)
            {
                lock (_stdoutTail)
                {
                    _stdoutTail.Enqueue(text);
                    while (_stdoutTail.Count > StdoutTailLines)
                    {
                        _stdoutTail.Dequeue();
                    }
                }

                var line = Parse(text);
                if (line is null)
                {
                    continue;
                }

                lock (_received)
                {
                    _received.Add(line);
                }

                await _lines.Writer.WriteAsync(line);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            AppendStderr($"[NodePeer] stdout read failed: {e.Message}\n");
        }
        finally
        {
            _lines.Writer.TryComplete();
        }
    }

    private async Task PumpStderrAsync()
    {
        try
        {
            var stderr = _process.StandardError;
            while (await stderr.ReadLineAsync() is { } text)
            {
                AppendStderr(text + "\n");
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            AppendStderr($"[NodePeer] stderr read failed: {e.Message}\n");
        }
    }

    private void AppendStderr(string text)
    {
        lock (_stderr)
        {
            _stderr.Append(text);
            if (_stderr.Length > StderrTailChars)
            {
                _stderr.Remove(0, _stderr.Length - StderrTailChars);
            }
        }
    }

    // Strings stay strings: no date parsing, so a value comes back exactly as node printed it.
    private JObject? Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        try
        {
            using var reader = new JsonTextReader(new StringReader(text)) { DateParseHandling = DateParseHandling.None };
            return JObject.Load(reader);
        }
        catch (JsonReaderException e)
        {
            AppendStderr($"[NodePeer] stdout line is not a JSON object ({e.Message}): {text}\n");
            return null;
        }
    }

    private string ExitCodeText()
    {
        try
        {
            return _process.HasExited ? $" with code {_process.ExitCode}" : string.Empty;
        }
        catch (InvalidOperationException)
        {
            return string.Empty;
        }
    }

    private string Diagnostics()
    {
        var text = new StringBuilder();
        lock (_stdoutTail)
        {
            text.Append("Last ").Append(_stdoutTail.Count).Append(" stdout lines of ").Append(_description).Append(":\n");
            foreach (var line in _stdoutTail)
            {
                text.Append("  ").Append(line).Append('\n');
            }
        }

        text.Append("Unconsumed lines: ").Append(_unconsumed.Count).Append('\n');
        lock (_stderr)
        {
            text.Append("stderr:\n").Append(_stderr.Length == 0 ? "  (empty)\n" : _stderr.ToString());
        }

        return text.ToString();
    }
}
