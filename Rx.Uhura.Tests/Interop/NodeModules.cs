using System.Diagnostics;
using System.Text;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// A folder of the repository with a package.json and a committed lock file (<c>interop/</c>: the Node uhura drivers;
/// <c>bench/</c>: the Node benchmark contenders), and the guarantee that its npm packages are installed (once per test
/// run, safely across parallel test processes). A missing node or npm is an error, never a reason to skip.
/// </summary>
public sealed class NodeModules
{
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan LockTimeout = TimeSpan.FromMinutes(6);
    private static readonly Lazy<string> LazyRepoRoot = new(FindRepoRoot);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly string _name;
    private readonly IReadOnlyList<string> _packages;
    private bool _installed;

    private NodeModules(string name, IReadOnlyList<string> packages)
    {
        _name = name;
        _packages = packages;
    }

    /// <summary><c>interop/</c>: the Node drivers for the npm uhura package.</summary>
    public static NodeModules Interop { get; } = new("interop", ["uhura"]);

    /// <summary><c>bench/</c>: the Node contenders of the comparison run (Socket.IO and the npm uhura package).</summary>
    public static NodeModules Bench { get; } = new("bench", ["socket.io", "socket.io-client", "uhura"]);

    /// <summary>The folder holding <c>Rx.Uhura.sln</c>, found by walking up from the test binaries.</summary>
    public static string RepoRoot => LazyRepoRoot.Value;

    /// <summary>The folder: the Node scripts and their package.json.</summary>
    public string Folder => Path.Combine(RepoRoot, _name);

    /// <summary>
    /// Runs <c>npm ci --no-audit --no-fund</c> in the folder when one of its packages is missing from node_modules.
    /// Throws <see cref="InvalidOperationException"/> when node or npm is not on PATH or the install fails.
    /// </summary>
    public async Task EnsureInstalledAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_installed)
            {
                return;
            }

            NodeExecutable();
            if (!IsInstalled())
            {
                var npm = FindOnPath(OperatingSystem.IsWindows() ? "npm.cmd" : "npm")
                    ?? throw new InvalidOperationException(
                        $"npm was not found on PATH. These tests need Node.js 20 with npm to install {_name}/package-lock.json.");
                await using var fileLock = await AcquireFileLockAsync(Path.Combine(Folder, ".npm-install.lock"));
                if (!IsInstalled())
                {
                    await RunNpmCiAsync(npm);
                }
            }

            if (!IsInstalled())
            {
                throw new InvalidOperationException(
                    $"npm ci finished but {Path.Combine(Folder, "node_modules")} still lacks one of {string.Join(", ", _packages)}.");
            }

            _installed = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The full path of <c>node</c> on PATH; throws a clear exception when there is none.</summary>
    public static string NodeExecutable() =>
        FindOnPath(OperatingSystem.IsWindows() ? "node.exe" : "node")
        ?? throw new InvalidOperationException(
            "node was not found on PATH. The interop and benchmark tests run real Node peers and need Node.js 20; " +
            "install it (e.g. apt-get install nodejs npm) — these tests never skip.");

    private bool IsInstalled() =>
        _packages.All(package => File.Exists(Path.Combine(Folder, "node_modules", package, "package.json")));

    private async Task RunNpmCiAsync(string npm)
    {
        var startInfo = new ProcessStartInfo(npm)
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "ci", "--no-audit", "--no-fund" })
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start {npm}.");
        process.StandardInput.Close();
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(InstallTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new InvalidOperationException(
                $"npm ci in {Folder} did not finish within {InstallTimeout}.\n{await stdout}\n{await stderr}");
        }

        output.Append(await stdout).Append(await stderr);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"npm ci --no-audit --no-fund in {Folder} failed with exit code {process.ExitCode}:\n{output}");
        }
    }

    // An exclusive FileStream is an flock on Unix and a share-none handle on Windows, so it
    // keeps test processes of the same run from installing at the same time.
    private static async Task<FileStream> AcquireFileLockAsync(string path)
    {
        var deadline = DateTime.UtcNow + LockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new TimeoutException($"Another process held {path} for more than {LockTimeout}.", e);
                }

                // Another test process holds it while it installs; a file lock has no signal to wait on.
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
        }
    }

    internal static string? FindOnPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string FindRepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Rx.Uhura.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException(
            $"No folder containing Rx.Uhura.sln above {AppContext.BaseDirectory}; the Node tests must run from the repository.");
    }
}
